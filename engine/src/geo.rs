//! Geometry on the sphere: validated coordinates, unit vectors and distances.
//!
//! Matching compares *chord lengths* between unit vectors: the chord is a
//! strictly increasing function of the great-circle distance, so ordering by
//! squared chord is exactly ordering by great-circle distance, at the cost of
//! three multiplications instead of the trigonometry of haversine.

use serde::{Deserialize, Serialize};

/// Mean Earth radius in metres, the one h3o uses, so our distances agree with it.
pub const EARTH_RADIUS_M: f64 = 6_371_007.180_918_475;

/// A validated WGS84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

/// Why a coordinate was refused; the field name goes into the API error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoordError {
    #[error("lat must be a finite number in [-90, 90]")]
    Lat,
    #[error("lng must be a finite number in [-180, 180]")]
    Lng,
}

impl CoordError {
    pub fn field(self) -> &'static str {
        match self {
            CoordError::Lat => "lat",
            CoordError::Lng => "lng",
        }
    }
}

impl LatLng {
    /// Checks that both numbers are finite and in range.
    pub fn new(lat: f64, lng: f64) -> Result<Self, CoordError> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(CoordError::Lat);
        }
        if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
            return Err(CoordError::Lng);
        }
        Ok(Self { lat, lng })
    }

    /// The point as a unit vector in Earth-centred coordinates.
    #[inline]
    pub fn to_unit(self) -> Unit {
        let (slat, clat) = self.lat.to_radians().sin_cos();
        let (slng, clng) = self.lng.to_radians().sin_cos();
        Unit([clat * clng, clat * slng, slat])
    }

    pub(crate) fn to_h3(self) -> h3o::LatLng {
        // Both numbers were range-checked in `new`, so this cannot fail.
        h3o::LatLng::new(self.lat, self.lng).expect("validated coordinates")
    }

    /// Great-circle distance in metres.
    pub fn distance_m(self, other: LatLng) -> f64 {
        self.to_unit().distance_m(other.to_unit())
    }
}

/// A point on the unit sphere.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Unit(pub [f64; 3]);

impl Unit {
    /// Squared chord length between two points: the cheap, order-preserving distance.
    #[inline]
    pub fn chord2(self, o: Unit) -> f64 {
        let dx = self.0[0] - o.0[0];
        let dy = self.0[1] - o.0[1];
        let dz = self.0[2] - o.0[2];
        dx * dx + dy * dy + dz * dz
    }

    #[inline]
    pub fn distance_m(self, o: Unit) -> f64 {
        chord2_to_m(self.chord2(o))
    }

    pub(crate) fn from_h3(ll: h3o::LatLng) -> Unit {
        LatLng {
            lat: ll.lat(),
            lng: ll.lng(),
        }
        .to_unit()
    }
}

/// Great-circle metres for a squared chord.
#[inline]
pub fn chord2_to_m(c2: f64) -> f64 {
    2.0 * (c2.sqrt() / 2.0).min(1.0).asin() * EARTH_RADIUS_M
}

/// Squared chord for a great-circle distance in metres (saturating at the antipode).
#[inline]
pub fn m_to_chord2(m: f64) -> f64 {
    if m <= 0.0 {
        return 0.0;
    }
    let half = (m / EARTH_RADIUS_M / 2.0).min(std::f64::consts::FRAC_PI_2);
    let c = 2.0 * half.sin();
    c * c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_coordinates() {
        assert_eq!(LatLng::new(f64::NAN, 0.0), Err(CoordError::Lat));
        assert_eq!(LatLng::new(90.0001, 0.0), Err(CoordError::Lat));
        assert_eq!(LatLng::new(0.0, f64::INFINITY), Err(CoordError::Lng));
        assert_eq!(LatLng::new(0.0, -180.5), Err(CoordError::Lng));
        assert!(LatLng::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn distances_agree_with_h3o() {
        let a = LatLng::new(52.52, 13.405).unwrap();
        let b = LatLng::new(48.8566, 2.3522).unwrap();
        let ours = a.distance_m(b);
        let theirs = a.to_h3().distance_m(b.to_h3());
        assert!((ours - theirs).abs() < 0.01, "{ours} vs {theirs}");
        // Across the antimeridian the short way round.
        let c = LatLng::new(0.0, 179.999).unwrap();
        let d = LatLng::new(0.0, -179.999).unwrap();
        assert!((c.distance_m(d) - 222.4).abs() < 0.5);
    }

    #[test]
    fn chord_round_trip() {
        for m in [0.5, 10.0, 1_000.0, 20_000.0, 5_000_000.0] {
            let back = chord2_to_m(m_to_chord2(m));
            assert!((back - m).abs() < 1e-6 * m.max(1.0), "{m} -> {back}");
        }
    }
}
