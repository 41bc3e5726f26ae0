/**
 * The profile (`GET` / `PATCH /v1/me`): name, and a worker's skills; sign out.
 * @module
 */
import { useEffect, useState } from "preact/hooks";
import { getMe, patchMe, type Me } from "../api.js";
import { Session, describe } from "../session.js";
import { SKILLS } from "../skills.js";
import { Field, FieldError, FormError, Loading, errorsFrom, useRetry, type Errors } from "../ui.js";

export function Profile({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const load = () => {
    setLoadError(null);
    getMe(session).then(setMe, (e) => setLoadError(describe(e)));
  };
  useEffect(load, [session]);
  useRetry(session, !!loadError, load);

  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const body: { name: string; skills?: string[] } = { name: String(f.get("name") ?? "") };
    if (me?.role === "worker") body.skills = f.getAll("skills").map(String);
    setBusy(true);
    setErrors({});
    setSaved(false);
    try {
      const m = await patchMe(session, body);
      setMe(m);
      session.user = { ...session.user, name: m.name };
      Session.save({ token: session.d.token!, user: session.user });
      setSaved(true);
    } catch (err) {
      setErrors(errorsFrom(err, ["name", "skills"]));
    }
    setBusy(false);
  };

  return (
    <>
      <h1 tabIndex={-1}>Profile</h1>
      {loadError && (
        <p class="error" role="alert">
          {loadError}
        </p>
      )}
      {!me && !loadError && <Loading what="your profile" />}
      {me && (
        <form onSubmit={submit} noValidate aria-label="Profile">
          <p class="muted">
            {me.email ?? "No email"} · {me.role}
          </p>
          <Field id="name" label="Name" autoComplete="name" defaultValue={me.name} required error={errors["name"]} />
          {me.role === "worker" && (
            <fieldset class="skills" aria-describedby={errors["skills"] ? "skills-error" : undefined}>
              <legend>Skills</legend>
              {[...new Set([...SKILLS, ...(me.skills ?? [])])].map((s) => (
                <label key={s}>
                  <input type="checkbox" name="skills" value={s} defaultChecked={me.skills?.includes(s) ?? false} /> {s}
                </label>
              ))}
              <FieldError id="skills" error={errors["skills"]} />
            </fieldset>
          )}
          <FormError errors={errors} />
          {saved && (
            <p class="notice" role="status">
              Saved.
            </p>
          )}
          <button class="primary" type="submit" disabled={busy}>
            {busy ? "Saving…" : "Save"}
          </button>
        </form>
      )}
      <p>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </p>
    </>
  );
}
