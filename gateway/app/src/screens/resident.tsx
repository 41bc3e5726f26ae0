/**
 * The resident's screens: their requests, a new request (description with
 * the triage preview before sending, photos, the place), their properties.
 * @module
 */
import { unwrap, type components } from "@dispatchd/client";
import { useEffect, useRef, useState } from "preact/hooks";
import { clock, moneyRange, STATUS_TEXT } from "../format.js";
import { PhotoPicker, uploadedIds, uploading, type Upload } from "../photos.js";
import { PlacePicker, type Place, type Property } from "../place.js";
import { href } from "../route.js";
import { describe, type Session } from "../session.js";
import { SKILLS } from "../skills.js";
import { newestFirst } from "../state.js";
import { useStore } from "../store.js";
import { Field, FieldError, FormError, Loading, errorsFrom, useRetry, type Errors } from "../ui.js";

type Triage = components["schemas"]["TriageView"];
type Urgency = components["schemas"]["Urgency"];

/** The resident's properties, read once per screen. */
function useProperties(session: Session): [Property[] | null, string | null, () => void] {
  const [list, setList] = useState<Property[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    setError(null);
    unwrap(session.d.rest.GET("/v1/properties", { params: { query: { limit: "500" } } })).then(
      (r) => setList(r.properties),
      (e) => setError(describe(e)),
    );
  };
  useEffect(load, [session]);
  useRetry(session, !!error, load);
  return [list, error, load];
}

export function Requests({ session }: { session: Session }) {
  const jobs = useStore(session.store, (s) => s.jobs);
  const [state, setState] = useState<"loading" | "ready" | string>("loading");
  const load = () => {
    session.refreshJobs().then(
      () => setState("ready"),
      (e) => setState(describe(e)),
    );
  };
  useEffect(load, [session]);
  useRetry(session, state !== "loading" && state !== "ready", load);
  const list = newestFirst(jobs).filter((j) => j.resident_id === session.user.id);
  return (
    <>
      <h1 tabIndex={-1}>My requests</h1>
      <p>
        <a class="button primary" href={href({ name: "new" })}>
          New request
        </a>
      </p>
      {state === "loading" && !list.length && <Loading what="your requests" />}
      {state !== "loading" && state !== "ready" && (
        <p class="error" role="alert">
          {state}
        </p>
      )}
      {state === "ready" && !list.length && <p class="muted">No requests yet.</p>}
      <ul class="cards" aria-label="My requests">
        {list.map((j) => (
          <li key={j.id} class="card" data-status={j.status}>
            <a href={href({ name: "job", id: j.id })}>
              <strong>{j.description || j.skill}</strong>
            </a>
            <span class={`status status-${j.status}`}>{STATUS_TEXT[j.status]}</span>
            <span class="muted">
              {j.skill} · {clock(j.created_at)}
            </span>
          </li>
        ))}
      </ul>
    </>
  );
}

const REQUEST_FIELDS = ["description", "skill", "urgency", "attachments", "photos", "lat", "lng", "property_id", "place"] as const;

function newKey(): string {
  return typeof crypto.randomUUID === "function" ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

export function NewRequest({ session }: { session: Session }) {
  const [properties, propsError] = useProperties(session);
  const [description, setDescription] = useState("");
  const [preview, setPreview] = useState<{ for: string; triage?: Triage; error?: string } | null>(null);
  const [skill, setSkill] = useState("");
  const [urgency, setUrgency] = useState<Urgency | "">("");
  const [photos, setPhotos] = useState<Upload[]>([]);
  const [place, setPlace] = useState<Place>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  // One key per request: a retry after a lost answer creates nothing new.
  const idem = useRef(newKey());

  const text = description.trim();
  const runTriage = async (d: string) => {
    if (d.length < 3) return;
    setPreview({ for: d });
    try {
      const t = await unwrap(session.d.rest.POST("/v1/triage", { body: { description: d } }));
      setPreview((p) => (p?.for === d ? { for: d, triage: t } : p));
    } catch (e) {
      setPreview((p) => (p?.for === d ? { for: d, error: describe(e) } : p));
    }
  };
  // The preview follows the description as it is typed.
  useEffect(() => {
    if (text.length < 3) return setPreview(null);
    const t = setTimeout(() => void runTriage(text), 500);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [text]);

  const triage = preview?.for === text ? preview.triage : undefined;
  const ready = !!triage || !!skill;
  const submit = async (e: Event) => {
    e.preventDefault();
    const errs: Errors = {};
    if (!text) errs["description"] = "description: say what needs doing";
    if (!place) errs["place"] = "place: choose a property, your position or a point on the map";
    if (uploading(photos)) errs["photos"] = "photos: wait until the photos are uploaded";
    if (!ready && text) errs["skill"] = "skill: wait for the preview, or choose the kind of work";
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const where = place!.kind === "property" ? { property_id: place!.id } : { lat: place!.lat, lng: place!.lng };
      const job = await unwrap(
        session.d.rest.POST("/v1/jobs", {
          body: {
            description: text,
            skill: skill || triage!.skill,
            urgency: urgency || triage?.urgency || "normal",
            attachments: uploadedIds(photos),
            ...where,
          },
          headers: { "idempotency-key": idem.current },
        }),
      );
      session.store.dispatch({ type: "job", job });
      location.hash = href({ name: "job", id: job.id });
    } catch (err) {
      setErrors(errorsFrom(err, REQUEST_FIELDS));
      setBusy(false);
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>New request</h1>
      <form onSubmit={submit} noValidate aria-label="New request">
        <div class="field">
          <label for="description">What needs doing?</label>
          <textarea
            id="description"
            rows={4}
            value={description}
            onInput={(e) => setDescription((e.currentTarget as HTMLTextAreaElement).value)}
            aria-describedby={`triage-preview${errors["description"] ? " description-error" : ""}`}
            aria-invalid={errors["description"] ? "true" : undefined}
            placeholder="e.g. Water leaking under the kitchen sink"
          />
          <FieldError id="description" error={errors["description"]} />
        </div>
        <div id="triage-preview" class="preview" role="status" aria-live="polite" data-state={triage ? "ready" : preview?.error ? "error" : preview ? "loading" : "empty"}>
          {!preview && <span class="muted">Describe the problem to see who we would send and a price estimate.</span>}
          {preview && !triage && !preview.error && <span>Checking…</span>}
          {preview?.error && <span class="error">Preview unavailable: {preview.error}</span>}
          {triage && (
            <dl>
              <dt>Kind of work</dt>
              <dd data-skill={triage.skill}>{triage.skill}</dd>
              <dt>Urgency</dt>
              <dd data-urgency={triage.urgency}>{triage.urgency}</dd>
              <dt>Estimate</dt>
              <dd>{moneyRange(triage.estimate_cents)}</dd>
              <dt>Confidence</dt>
              <dd>
                {Math.round(triage.confidence * 100)}%{triage.confidence < 0.5 ? " — not sure: please choose the kind of work below" : ""}
              </dd>
            </dl>
          )}
        </div>
        <div class="row">
          <div class="field">
            <label for="skill">Kind of work</label>
            <select id="skill" value={skill} onChange={(e) => setSkill((e.currentTarget as HTMLSelectElement).value)} aria-describedby={errors["skill"] ? "skill-error" : undefined}>
              <option value="">{triage ? `As previewed (${triage.skill})` : "As previewed"}</option>
              {SKILLS.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
            <FieldError id="skill" error={errors["skill"]} />
          </div>
          <div class="field">
            <label for="urgency">Urgency</label>
            <select id="urgency" value={urgency} onChange={(e) => setUrgency((e.currentTarget as HTMLSelectElement).value as Urgency | "")}>
              <option value="">{triage ? `As previewed (${triage.urgency})` : "As previewed"}</option>
              {(["emergency", "high", "normal", "low"] as const).map((u) => (
                <option key={u} value={u}>
                  {u}
                </option>
              ))}
            </select>
            <FieldError id="urgency" error={errors["urgency"]} />
          </div>
        </div>
        <PhotoPicker session={session} id="photos" label="Photos" items={photos} onChange={setPhotos} error={errors["photos"] ?? errors["attachments"]} />
        {properties === null && !propsError && <Loading what="your properties" />}
        {propsError && (
          <p class="error" role="alert">
            Properties: {propsError}
          </p>
        )}
        {(properties !== null || propsError) && (
          <PlacePicker id="place" properties={properties ?? undefined} value={place} onChange={setPlace} error={errors["place"] ?? errors["lat"] ?? errors["lng"] ?? errors["property_id"]} />
        )}
        <FormError errors={errors} />
        <button class="primary" type="submit" disabled={busy || !ready}>
          {busy ? "Sending…" : "Send request"}
        </button>
        {!ready && <p class="hint">The request can be sent once the preview is shown or a kind of work is chosen.</p>}
      </form>
    </>
  );
}

const PROPERTY_FIELDS = ["name", "address", "lat", "lng", "place"] as const;

export function Properties({ session }: { session: Session }) {
  const [list, error, reload] = useProperties(session);
  const [place, setPlace] = useState<Place>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    if (!place || place.kind !== "point") return setErrors({ place: "place: use your position or choose a point on the map" });
    setBusy(true);
    setErrors({});
    try {
      const address = String(f.get("address") ?? "").trim();
      await unwrap(
        session.d.rest.POST("/v1/properties", {
          body: { name: String(f.get("name") ?? ""), lat: place.lat, lng: place.lng, ...(address ? { address } : {}) },
        }),
      );
      form.reset();
      setPlace(null);
      setOpen(false);
      reload();
    } catch (err) {
      setErrors(errorsFrom(err, PROPERTY_FIELDS));
    }
    setBusy(false);
  };
  return (
    <>
      <h1 tabIndex={-1}>My properties</h1>
      {list === null && !error && <Loading what="your properties" />}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {list && !list.length && <p class="muted">No properties yet: add your home or the buildings you look after.</p>}
      {list && list.length > 0 && (
        <ul class="cards" aria-label="My properties">
          {list.map((p) => (
            <li class="card" key={p.id}>
              <strong>{p.name}</strong>
              <span class="muted">{p.address || `${p.lat.toFixed(5)}, ${p.lng.toFixed(5)}`}</span>
            </li>
          ))}
        </ul>
      )}
      {!open ? (
        <button type="button" onClick={() => setOpen(true)}>
          Add a property
        </button>
      ) : (
        <form onSubmit={submit} noValidate aria-label="Add a property">
          <Field id="name" label="Name" required placeholder="e.g. Home, Flat 3B" error={errors["name"]} />
          <Field id="address" label="Address (optional)" autoComplete="street-address" error={errors["address"]} />
          <PlacePicker id="place" value={place} onChange={setPlace} error={errors["place"] ?? errors["lat"] ?? errors["lng"]} />
          <FormError errors={errors} />
          <div class="actions">
            <button class="primary" type="submit" disabled={busy}>
              {busy ? "Saving…" : "Save property"}
            </button>
            <button type="button" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </>
  );
}
