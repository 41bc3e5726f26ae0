/**
 * Where the work is: one of the resident's properties, where the device is
 * now (Geolocation), or a point chosen on the map.
 * @module
 */
import type { components } from "@dispatchd/client";
import { useEffect, useState } from "preact/hooks";
import { MapView } from "./map.js";
import { FieldError } from "./ui.js";

export type Property = components["schemas"]["PropertyView"];

export type Place = { kind: "property"; id: string } | { kind: "point"; lat: number; lng: number; source: "device" | "map" } | null;

type Mode = "property" | "device" | "map";

/** The device's position, or a human reason why not. */
export function locate(): Promise<{ lat: number; lng: number; accuracy: number }> {
  return new Promise((ok, fail) => {
    if (!("geolocation" in navigator)) return fail(new Error("This device cannot tell its position."));
    navigator.geolocation.getCurrentPosition(
      (p) => ok({ lat: p.coords.latitude, lng: p.coords.longitude, accuracy: p.coords.accuracy }),
      (e) =>
        fail(
          new Error(
            e.code === e.PERMISSION_DENIED
              ? "Location permission is off for this site: allow it, or choose a point on the map."
              : "The position could not be found: try again, or choose a point on the map.",
          ),
        ),
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 10_000 },
    );
  });
}

export function PlacePicker(props: {
  id: string;
  properties?: Property[] | undefined;
  value: Place;
  onChange: (p: Place) => void;
  error?: string | undefined;
}) {
  const { id, properties, value, onChange, error } = props;
  const hasProps = !!properties?.length;
  const [mode, setMode] = useState<Mode>(hasProps ? "property" : "device");
  const [finding, setFinding] = useState<string | null>(null);
  const [accuracy, setAccuracy] = useState<number | null>(null);

  const findMe = async () => {
    setFinding("Finding your position…");
    try {
      const p = await locate();
      setAccuracy(p.accuracy);
      onChange({ kind: "point", lat: p.lat, lng: p.lng, source: "device" });
      setFinding(null);
    } catch (e) {
      setFinding((e as Error).message);
    }
  };
  const choose = (m: Mode) => {
    setMode(m);
    setFinding(null);
    if (m === "property") onChange(properties?.[0] ? { kind: "property", id: properties[0].id } : null);
    else if (m === "device") {
      onChange(null);
      void findMe();
    } else onChange(value?.kind === "point" ? { ...value, source: "map" } : null);
  };
  const point = value?.kind === "point" ? value : null;
  useEffect(() => {
    if (mode === "property" && !value && properties?.[0]) onChange({ kind: "property", id: properties[0].id });
    if (mode === "device" && !value) void findMe();
    // Once, for the mode the picker opens with.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <fieldset class="place" aria-describedby={error ? `${id}-error` : undefined}>
      <legend>Where</legend>
      <div class="choice" role="radiogroup" aria-label="Where">
        {hasProps && (
          <label>
            <input type="radio" name={`${id}-mode`} checked={mode === "property"} onChange={() => choose("property")} /> At one of my properties
          </label>
        )}
        <label>
          <input type="radio" name={`${id}-mode`} checked={mode === "device"} onChange={() => choose("device")} /> Where I am now
        </label>
        <label>
          <input type="radio" name={`${id}-mode`} checked={mode === "map"} onChange={() => choose("map")} /> A point on the map
        </label>
      </div>
      {mode === "property" && hasProps && (
        <div class="field">
          <label for={`${id}-property`}>Property</label>
          <select
            id={`${id}-property`}
            value={value?.kind === "property" ? value.id : ""}
            onChange={(e) => onChange({ kind: "property", id: (e.currentTarget as HTMLSelectElement).value })}
          >
            {properties!.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
                {p.address ? ` — ${p.address}` : ""}
              </option>
            ))}
          </select>
        </div>
      )}
      {mode === "device" && (
        <div class="device-place">
          <button type="button" onClick={findMe}>
            {point?.source === "device" ? "Find my position again" : "Use my position"}
          </button>
          <p role="status" class={finding && !finding.endsWith("…") ? "error" : "muted"} data-place={point ? `${point.lat.toFixed(5)},${point.lng.toFixed(5)}` : ""}>
            {finding ??
              (point?.source === "device"
                ? `Your position: ${point.lat.toFixed(5)}, ${point.lng.toFixed(5)}${accuracy ? ` (within ${Math.round(accuracy)} m)` : ""}`
                : "")}
          </p>
        </div>
      )}
      {mode === "map" && (
        <div>
          <p class="hint">Click the map, or move it with the arrow keys and use the button below it.</p>
          <MapView
            label="Choose the place on the map"
            pins={point ? [{ id: "pick", lat: point.lat, lng: point.lng, kind: "pick", label: "Chosen place" }] : []}
            center={point ?? undefined}
            onPick={(p) => onChange({ kind: "point", ...p, source: "map" })}
          />
          <p role="status" class="muted">
            {point ? `Chosen: ${point.lat.toFixed(5)}, ${point.lng.toFixed(5)}` : "No point chosen yet."}
          </p>
        </div>
      )}
      <FieldError id={id} error={error} />
    </fieldset>
  );
}
