/**
 * Sign in, and sign up as a resident or a worker (`POST /v1/auth/register`,
 * then the same sign-in). The server's message is shown next to the field
 * it names (a weak password under the password, a taken email under the
 * email).
 * @module
 */
import { unwrap } from "@dispatchd/client";
import { useState } from "preact/hooks";
import { href } from "../route.js";
import { anonymous, signIn, type Saved } from "../session.js";
import { SKILLS } from "../skills.js";
import { Field, FieldError, FormError, errorsFrom, type Errors } from "../ui.js";

const FIELDS = ["email", "password", "name", "role", "skills"] as const;

export function SignIn({ onSignedIn, notice }: { onSignedIn: (s: Saved) => void; notice: string }) {
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setErrors({});
    try {
      onSignedIn(await signIn(String(f.get("email")), String(f.get("password"))));
    } catch (err) {
      const es = errorsFrom(err, FIELDS);
      if ((err as { code?: string }).code === "unauthorized") setErrors({ _: "Wrong email or password." });
      else setErrors(es);
      setBusy(false);
    }
  };
  return (
    <main class="auth" id="main">
      <h1 tabIndex={-1}>dispatchd</h1>
      <p class="lead">Repairs and maintenance for residents, and the work for engineers.</p>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      <form onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <h2 id="signin-title">Sign in</h2>
        <Field id="email" label="Email" type="email" autoComplete="username" required error={errors["email"]} />
        <Field id="password" label="Password" type="password" autoComplete="current-password" required error={errors["password"]} />
        <FormError errors={errors} />
        <button class="primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        New here? <a href={href({ name: "signup" })}>Create an account</a>
      </p>
    </main>
  );
}

export function SignUp({ onSignedIn }: { onSignedIn: (s: Saved) => void }) {
  const [role, setRole] = useState<"resident" | "worker">("resident");
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const email = String(f.get("email"));
    const password = String(f.get("password"));
    const skills = f.getAll("skills").map(String);
    if (role === "worker" && !skills.length) {
      setErrors({ skills: "skills: choose at least one" });
      return;
    }
    setBusy(true);
    setErrors({});
    try {
      await unwrap(
        anonymous().rest.POST("/v1/auth/register", {
          body: { email, password, name: String(f.get("name")), role, ...(role === "worker" ? { skills } : {}) },
        }),
      );
      onSignedIn(await signIn(email, password));
    } catch (err) {
      setErrors(errorsFrom(err, FIELDS));
      setBusy(false);
    }
  };
  return (
    <main class="auth" id="main">
      <h1 tabIndex={-1}>Create an account</h1>
      <form onSubmit={submit} noValidate aria-label="Create an account">
        <fieldset class="choice">
          <legend>I am</legend>
          <label>
            <input type="radio" name="role" value="resident" checked={role === "resident"} onChange={() => setRole("resident")} /> a resident
            asking for repairs
          </label>
          <label>
            <input type="radio" name="role" value="worker" checked={role === "worker"} onChange={() => setRole("worker")} /> an engineer or
            partner doing the work
          </label>
        </fieldset>
        <Field id="name" label="Name" autoComplete="name" required error={errors["name"]} />
        <Field id="email" label="Email" type="email" autoComplete="username" required error={errors["email"]} />
        <Field
          id="password"
          label="Password"
          type="password"
          autoComplete="new-password"
          required
          hint="At least 8 characters, with an upper case letter, a lower case letter and a digit."
          error={errors["password"]}
        />
        {role === "worker" && (
          <fieldset class="skills" aria-describedby={errors["skills"] ? "skills-error" : undefined}>
            <legend>Skills</legend>
            {SKILLS.map((s) => (
              <label key={s}>
                <input type="checkbox" name="skills" value={s} /> {s}
              </label>
            ))}
            <FieldError id="skills" error={errors["skills"]} />
          </fieldset>
        )}
        <FormError errors={errors} />
        <button class="primary" type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
      </form>
      <p>
        Have an account? <a href={href({ name: "home" })}>Sign in</a>
      </p>
    </main>
  );
}
