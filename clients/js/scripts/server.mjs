// Starts a real `dispatchd` for the schema check and the integration tests:
// a free loopback port, a private data directory, the test secret, cheap
// password hashing and high rate limits — the same settings as the Rust
// end-to-end harness (gateway/tests/common/mod.rs). The binary is
// $DISPATCHD_BIN, else target/{debug,release}/dispatchd of this checkout.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The JWT secret every test server signs with. */
export const SECRET = "js-client-test-secret-0123456789";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The dispatchd binary to run. @returns {string} */
export function binary() {
  const env = process.env.DISPATCHD_BIN;
  if (env) {
    if (!existsSync(env)) throw new Error(`DISPATCHD_BIN=${env} does not exist`);
    return resolve(env);
  }
  for (const p of ["target/debug/dispatchd", "target/release/dispatchd"]) {
    const full = join(ROOT, p);
    if (existsSync(full)) return full;
  }
  throw new Error("no dispatchd binary: set DISPATCHD_BIN (or build target/debug/dispatchd)");
}

/** A free loopback port. @returns {Promise<number>} */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every server started and not yet stopped: killed if the process exits. */
const live = new Set();
process.on("exit", () => {
  for (const s of live) s.kill9();
});

/**
 * A running dispatchd. `kill9()` then `start()` restarts it on the same port
 * and data directory.
 */
export class TestServer {
  /**
   * @param {Record<string, string>} [overrides] more `DISPATCHD_*` variables
   */
  constructor(overrides = {}) {
    /** @type {string} */
    this.dir = mkdtempSync(join(tmpdir(), "dispatchd-js-"));
    /** @type {number} */
    this.port = 0;
    /** @type {import("node:child_process").ChildProcess | null} */
    this.child = null;
    /** @type {Record<string, string>} */
    this.overrides = overrides;
    /** @type {string} */
    this.bin = binary();
    this.logs = 0;
  }

  /** `http://127.0.0.1:PORT` */
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The child's environment. @returns {Record<string, string>} */
  env() {
    // The server refuses unknown DISPATCHD_* keys: pass none of ours (DISPATCHD_BIN …).
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([k, v]) => !k.startsWith("DISPATCHD_") && v !== undefined),
    );
    return {
      ...inherited,
      DISPATCHD_SERVER_ADDR: `127.0.0.1:${this.port}`,
      DISPATCHD_STORAGE_DATA_DIR: join(this.dir, "data"),
      DISPATCHD_AUTH_JWT_SECRET: SECRET,
      DISPATCHD_AUTH_ARGON2_MEMORY_KIB: "64",
      DISPATCHD_AUTH_ARGON2_ITERATIONS: "1",
      DISPATCHD_LIMITS_REQUESTS_PER_MINUTE: "100000",
      DISPATCHD_LIMITS_AUTH_PER_MINUTE: "100000",
      DISPATCHD_LOG_LEVEL: "warn",
      ...this.overrides,
    };
  }

  /** Starts the process (first time: on a free port) and waits for /readyz. */
  async start() {
    if (!this.port) this.port = await freePort();
    const log = join(this.dir, `server-${this.logs++}.log`);
    const child = spawn(this.bin, [], {
      cwd: this.dir,
      env: this.env(),
      stdio: ["ignore", "ignore", openSync(log, "w")],
    });
    this.child = child;
    live.add(this);
    let exited = null;
    child.once("exit", (code, signal) => (exited = signal ?? code));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.status === 200) return this;
      } catch {
        // not listening yet
      }
      if (exited !== null) {
        throw new Error(`dispatchd exited during startup (${exited}):\n${readFileSync(log, "utf8")}`);
      }
      if (Date.now() > deadline) throw new Error("dispatchd not ready within 30 s");
      await sleep(25);
    }
  }

  /** SIGKILL: no shutdown path, no final snapshot. */
  kill9() {
    const c = this.child;
    this.child = null;
    live.delete(this);
    if (c && c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    return c ? new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once("exit", () => r(undefined)))) : Promise.resolve();
  }

  /** Kills the process and removes its data directory. */
  async stop() {
    await this.kill9();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * `dispatchd token --sub SUB --role ROLE` with this server's secret.
   * @param {string} sub @param {string} role @param {string[]} [extra]
   * @returns {string}
   */
  token(sub, role, extra = []) {
    const out = spawnSync(this.bin, ["token", "--sub", sub, "--role", role, ...extra], {
      cwd: this.dir,
      env: this.env(),
      encoding: "utf8",
    });
    if (out.status !== 0) throw new Error(`dispatchd token: ${out.stderr}`);
    return out.stdout.trim();
  }
}

/**
 * Starts a server. @param {Record<string, string>} [overrides]
 * @returns {Promise<TestServer>}
 */
export async function startServer(overrides = {}) {
  return new TestServer(overrides).start();
}
