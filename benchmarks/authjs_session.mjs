// Times @auth/core's own handler answering GET /auth/session, for benchmarks/authjs.py.
//
// stdin:  {"secret": "...", "token": "...", "email": "...", "iterations": 2000,
//          "repeats": 5, "warmup": 500}
// stdout: {"version": "0.41.3", "best_us": ..., "median_us": ..., "runs_us": [...]}
//
// Every call builds a fresh Request carrying the session cookie, runs Auth(request,
// config) and reads the response body, which is what a server does per request. The
// first answer is checked (the session's email, a re-issued cookie) so a broken token
// fails loudly instead of timing the "no session" path. Run with --expose-gc so every
// repeat starts from a collected heap, as the Python side does.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(new URL("../tests/node/package.json", import.meta.url));
const load = (specifier) => import(pathToFileURL(require.resolve(specifier)).href);

const { Auth } = await load("@auth/core");
// The package's exports hide package.json; it sits next to the resolved entry point.
const { version } = JSON.parse(
  readFileSync(new URL("package.json", pathToFileURL(require.resolve("@auth/core"))), "utf8"),
);

const options = JSON.parse(readFileSync(0, "utf8"));
const errors = [];
const config = {
  secret: options.secret,
  trustHost: true,
  basePath: "/auth",
  providers: [],
  session: { strategy: "jwt" },
  // Auth.js logs a bad token and answers `null`; collect instead so the check below sees it.
  logger: { error: (error) => errors.push(String(error)), warn: () => {}, debug: () => {} },
};
const url = "http://localhost/auth/session";
const cookie = `authjs.session-token=${options.token}`;

async function call() {
  const response = await Auth(new Request(url, { headers: { cookie } }), config);
  return [response, await response.text()];
}

const [first, body] = await call();
const session = JSON.parse(body);
if (errors.length || first.status !== 200 || session?.user?.email !== options.email) {
  throw new Error(`@auth/core did not resolve the session: ${first.status} ${body} ${errors}`);
}
if (!first.headers.getSetCookie().some((value) => value.startsWith("authjs.session-token="))) {
  throw new Error("@auth/core did not re-issue the session cookie");
}

for (let index = 0; index < options.warmup; index += 1) await call();

const runs = [];
for (let repeat = 0; repeat < options.repeats; repeat += 1) {
  globalThis.gc?.();
  const start = process.hrtime.bigint();
  for (let index = 0; index < options.iterations; index += 1) await call();
  const elapsed = Number(process.hrtime.bigint() - start);
  runs.push(elapsed / options.iterations / 1000);
}
if (errors.length) throw new Error(`@auth/core reported errors: ${errors[0]}`);

const sorted = [...runs].sort((a, b) => a - b);
process.stdout.write(
  JSON.stringify({
    version,
    best_us: sorted[0],
    median_us: sorted[Math.floor(sorted.length / 2)],
    runs_us: runs,
  }),
);
