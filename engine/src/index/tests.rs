//! The index's geometry: the bounds its exact search relies on.
use super::*;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn random_point(s: &mut u64) -> LatLng {
    // Uniform on the sphere.
    let z = (xorshift(s) % 2_000_001) as f64 / 1e6 - 1.0;
    let lng = (xorshift(s) % 3_600_001) as f64 / 1e4 - 180.0;
    LatLng::new(z.asin().to_degrees(), lng).unwrap()
}

/// The stop rule needs every cell's boundary within `R` of its centre.
#[test]
fn r_max_bounds_every_sampled_cell() {
    let mut seed = 0x9e3779b97f4a7c15;
    for r in [5u8, 6, 7, 8, 9, 10] {
        let res = Resolution::try_from(r).unwrap();
        let r_max = res.edge_length_m() * R_MAX_FACTOR;
        let check = |cell: CellIndex| {
            let c = Unit::from_h3(h3o::LatLng::from(cell));
            for v in cell.boundary().iter() {
                let d = c.distance_m(Unit::from_h3(*v));
                assert!(d < r_max / 1.05, "res {r} cell {cell}: {d} m vs {r_max}");
            }
        };
        for p in res.pentagons() {
            for c in p.grid_disk::<Vec<_>>(2) {
                check(c);
            }
        }
        for _ in 0..20_000 {
            check(random_point(&mut seed).to_h3().to_cell(res));
        }
    }
}

/// The stop rule needs the nearest centre `j` rings out to be at least
/// `GAMMA × j × edge` away, everywhere.
#[test]
fn ring_distance_bound_holds() {
    let mut seed = 0x1234_5678_9abc_def1;
    for r in [4u8, 5, 6, 7, 8, 9, 10] {
        let res = Resolution::try_from(r).unwrap();
        let edge = res.edge_length_m();
        let check = |c0: CellIndex, rings: u32| {
            let c = Unit::from_h3(h3o::LatLng::from(c0));
            let mut cells = Vec::new();
            for j in 1..=rings {
                ring_into(c0, j, &mut cells);
                for cell in &cells {
                    let d = c.distance_m(Unit::from_h3(h3o::LatLng::from(*cell)));
                    assert!(
                        d >= GAMMA * j as f64 * edge * 1.03,
                        "res {r} origin {c0} ring {j}: {d} m"
                    );
                }
            }
        };
        for p in res.pentagons() {
            for c in p.grid_disk::<Vec<_>>(3) {
                check(c, 12);
            }
        }
        for _ in 0..400 {
            check(random_point(&mut seed).to_h3().to_cell(res), 8);
        }
    }
}

/// Points inside the fast-path circle really are in the cell.
#[test]
fn inscribed_circle_is_inside_the_cell() {
    let mut seed = 42;
    for _ in 0..20_000 {
        let p = random_point(&mut seed);
        let cell = p.to_h3().to_cell(Resolution::Nine);
        let (center, inside_c2) = inscribed(cell);
        // Walk from the centre towards a random direction up to the circle.
        let q = random_point(&mut seed).to_unit();
        let c = center.0;
        let dot = c[0] * q.0[0] + c[1] * q.0[1] + c[2] * q.0[2];
        let mut t = [
            q.0[0] - dot * c[0],
            q.0[1] - dot * c[1],
            q.0[2] - dot * c[2],
        ];
        let tl = (t[0] * t[0] + t[1] * t[1] + t[2] * t[2]).sqrt();
        if tl == 0.0 {
            continue;
        }
        t.iter_mut().for_each(|x| *x /= tl);
        let ang = 2.0 * (inside_c2.sqrt() / 2.0).asin() * 0.999;
        let (s, co) = ang.sin_cos();
        let u = [
            c[0] * co + t[0] * s,
            c[1] * co + t[1] * s,
            c[2] * co + t[2] * s,
        ];
        let ll = LatLng::new(u[2].asin().to_degrees(), u[1].atan2(u[0]).to_degrees()).unwrap();
        assert_eq!(ll.to_h3().to_cell(Resolution::Nine), cell, "{ll:?}");
    }
}
