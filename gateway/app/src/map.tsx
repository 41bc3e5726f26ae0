/**
 * The map: Leaflet with the world's land outline (world-atlas, Natural Earth
 * 1:110m) under plain markers — no tile server, nothing fetched. It owns its
 * layers and takes plain data (`pins`); `onPick` makes it a place picker
 * (a click, or the keyboard: pan with the arrow keys, then "Put the pin at
 * the centre"). Each marker's element carries `data-lat`/`data-lng`.
 * @module
 */
import * as L from "leaflet";
import { useEffect, useRef } from "preact/hooks";
import { feature } from "topojson-client";
import land from "world-atlas/land-110m.json";

/** A marker on the map. */
export interface Pin {
  id: string;
  lat: number;
  lng: number;
  kind: "job" | "worker" | "me" | "pick" | "property";
  label: string;
}

export interface MapProps {
  /** The map's accessible name. */
  label: string;
  pins: Pin[];
  /** Where to look when there are no pins. */
  center?: { lat: number; lng: number } | undefined;
  /** Makes the map a picker: called with the point clicked or chosen by keyboard. */
  onPick?: ((p: { lat: number; lng: number }) => void) | undefined;
}

let landLayer: GeoJSON.GeoJsonObject | null = null;

function pinIcon(kind: Pin["kind"]): L.DivIcon {
  return L.divIcon({ className: `pin pin-${kind}`, html: "", iconSize: [22, 22], iconAnchor: [11, 11] });
}

export function MapView({ label, pins, center, onPick }: MapProps) {
  const el = useRef<HTMLDivElement>(null);
  const map = useRef<L.Map | null>(null);
  const markers = useRef(new Map<string, L.Marker>());
  const pick = useRef(onPick);
  pick.current = onPick;
  const fitted = useRef("");

  useEffect(() => {
    const m = L.map(el.current!, { minZoom: 2, zoomSnap: 0.5, keyboard: true, worldCopyJump: true });
    map.current = m;
    m.createPane("land").style.zIndex = "250";
    landLayer ??= feature(land, (land as { objects: { land: unknown } }).objects.land) as GeoJSON.GeoJsonObject;
    L.geoJSON(landLayer, {
      pane: "land",
      style: { color: "#7a8b99", weight: 1, fillColor: "#ffffff", fillOpacity: 1 },
      interactive: false,
    }).addTo(m);
    m.attributionControl.setPrefix(false);
    m.attributionControl.addAttribution("Land outline: Natural Earth");
    L.control.scale({ imperial: false }).addTo(m);
    m.setView(center ? [center.lat, center.lng] : [30, 0], center ? 13 : 2);
    m.on("click", (e: L.LeafletMouseEvent) => pick.current?.({ lat: e.latlng.lat, lng: e.latlng.lng }));
    // The container's size is known only once laid out.
    const ro = new ResizeObserver(() => m.invalidateSize());
    ro.observe(el.current!);
    return () => {
      ro.disconnect();
      m.remove();
      map.current = null;
      markers.current.clear();
    };
    // The map is made once; pins and centre follow below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const m = map.current;
    if (!m) return;
    const seen = new Set<string>();
    for (const p of pins) {
      seen.add(p.id);
      let mk = markers.current.get(p.id);
      if (!mk) {
        mk = L.marker([p.lat, p.lng], { icon: pinIcon(p.kind), interactive: false, keyboard: false, title: p.label }).addTo(m);
        markers.current.set(p.id, mk);
      } else {
        mk.setLatLng([p.lat, p.lng]);
      }
      const node = mk.getElement();
      if (node) {
        node.dataset.lat = p.lat.toFixed(6);
        node.dataset.lng = p.lng.toFixed(6);
        node.title = p.label;
      }
    }
    for (const [id, mk] of markers.current) {
      if (!seen.has(id)) {
        mk.remove();
        markers.current.delete(id);
      }
    }
    // Frame the pins when the set of pins changes, or when one leaves the view.
    const key = pins.map((p) => p.id).join(",");
    const out = pins.some((p) => !m.getBounds().pad(-0.1).contains([p.lat, p.lng]));
    if (pins.length && (key !== fitted.current || out)) {
      fitted.current = key;
      if (pins.length === 1) m.setView([pins[0]!.lat, pins[0]!.lng], Math.max(m.getZoom(), 14));
      else m.fitBounds(L.latLngBounds(pins.map((p) => [p.lat, p.lng] as [number, number])), { padding: [30, 30], maxZoom: 16 });
    }
  }, [pins]);

  useEffect(() => {
    if (center && !pins.length) map.current?.setView([center.lat, center.lng], 13);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [center?.lat, center?.lng]);

  return (
    <div class="map-wrap">
      <div ref={el} class="map" role="region" aria-label={label} />
      {onPick && (
        <button
          type="button"
          class="pick-centre"
          onClick={() => {
            const c = map.current?.getCenter();
            if (c) pick.current?.({ lat: c.lat, lng: c.lng });
          }}
        >
          Put the pin at the map's centre
        </button>
      )}
    </div>
  );
}
