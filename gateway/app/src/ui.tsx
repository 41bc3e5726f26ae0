/**
 * Small shared pieces of the screens: labelled fields that show the
 * server's message next to the field it names, the connection banner,
 * photos fetched with the token, a ticking clock.
 * @module
 */
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { attachmentUrl } from "./api.js";
import { describe, type Session } from "./session.js";
import { connection, fieldOf } from "./state.js";
import { useStore } from "./store.js";

/** Errors of a form: by field name, and `_` for the form as a whole. */
export type Errors = Record<string, string>;

/** A failed call's message, filed under the field it names (else `_`). */
export function errorsFrom(e: unknown, fields: readonly string[]): Errors {
  const text = describe(e);
  const f = fieldOf(text, fields);
  return { [f ?? "_"]: text };
}

type InputProps = JSX.HTMLAttributes<HTMLInputElement>;

/** A labelled input; `error` is shown under it and announced. */
export function Field(props: { id: string; label: string; error?: string | undefined; hint?: string } & InputProps) {
  const { id, label, error, hint, ...rest } = props;
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} name={id} aria-invalid={error ? "true" : undefined} aria-describedby={described || undefined} {...rest} />
      {hint && <p class="hint" id={`${id}-hint`}>{hint}</p>}
      <FieldError id={id} error={error} />
    </div>
  );
}

/** The error line of a field (`<id>-error`), or nothing. */
export function FieldError({ id, error }: { id: string; error?: string | undefined }) {
  return error ? (
    <p class="error" id={`${id}-error`} role="alert">
      {error}
    </p>
  ) : null;
}

/** A form's own error (what no field is named by). */
export function FormError({ errors }: { errors: Errors }) {
  return errors["_"] ? (
    <p class="error" role="alert">
      {errors["_"]}
    </p>
  ) : null;
}

/** "Offline" / "Reconnecting" across the top while the app cannot talk to the server. */
export function Banner({ session }: { session: Session }) {
  const c = useStore(session.store, (s) => connection(s));
  const kind = c?.kind ?? "online";
  return (
    <div class={`banner ${c ? "show" : ""}`} role="status" data-connection={kind} aria-live="polite">
      {c ? c.text : ""}
    </div>
  );
}

/** A loading line (so every wait is visible). */
export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      Loading {what}…
    </p>
  );
}

/**
 * Calls `load` again when the live connection comes back (the socket opens)
 * while the last read had `failed`: a screen read offline fills in by itself.
 */
export function useRetry(session: Session, failed: boolean, load: () => void): void {
  const opens = useStore(session.store, (s) => s.opens);
  const seen = useRef(opens);
  const again = useRef(load);
  again.current = load;
  useEffect(() => {
    if (opens === seen.current) return;
    seen.current = opens;
    if (failed) again.current();
  }, [opens, failed]);
}

/** `Date.now()`, re-rendered every `ms`. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Thumbnails of attachments, fetched with the token as `blob:` URLs. */
export function Photos({ session, ids, label }: { session: Session; ids: readonly string[]; label: string }) {
  if (!ids.length) return null;
  return (
    <ul class="photos" aria-label={label}>
      {ids.map((id, i) => (
        <li key={id}>
          <Photo session={session} id={id} alt={`${label} ${i + 1}`} />
        </li>
      ))}
    </ul>
  );
}

function Photo({ session, id, alt }: { session: Session; id: string; alt: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    let made: string | null = null;
    attachmentUrl(session, id).then(
      (u) => {
        made = u;
        if (live) setUrl(u);
        else URL.revokeObjectURL(u);
      },
      (e) => live && setFailed(describe(e)),
    );
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [session, id]);
  if (failed) return <span class="error">{alt}: {failed}</span>;
  if (!url) return <span class="thumb loading" role="img" aria-label={`${alt}, loading`} />;
  return <img class="thumb" src={url} alt={alt} data-attachment={id} />;
}

/** A section with a heading. */
export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  const hid = `${id ?? title.toLowerCase().replace(/\W+/g, "-")}-title`;
  return (
    <section aria-labelledby={hid} {...(id ? { id } : {})}>
      <h2 id={hid}>{title}</h2>
      {children}
    </section>
  );
}
