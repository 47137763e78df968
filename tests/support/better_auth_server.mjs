// A real Better Auth server (the `better-auth` npm package) for the Python tests.
//
// Config: one JSON document, as the first argument or in BETTER_AUTH_HARNESS_CONFIG:
//   {"secret": "...", "baseURL": "http://app.test" (optional: the server's own URL),
//    "database": {"kind": "mongodb", "url": "mongodb://...", "db": "name"}
//              | {"kind": "sqlite", "file": "/path/auth.db"}
//              | {"kind": "postgres", "url": "postgresql://..."},
//    "cookiePrefix": "better-auth", "expiresIn": 604800, "updateAge": 86400,
//    "cookieCache": {"strategy": "compact" | "jwt" | "jwe", "maxAge": 300},
//    "useSecureCookies": false}
//   Absent options keep Better Auth's own defaults.
// stdout: one line {"port": <port>, "url": "http://127.0.0.1:<port>", "baseURL": "..."}
// once the server listens on a free loopback port (SQL tables are created first). The
// process serves until it is terminated; logs go to stderr only.
//
// Routes:
//   /api/auth/*            Better Auth's own handler, exactly as an app mounts it.
//   GET  /test/session     auth.api.getSession for the request's headers (its Cookie
//                          header), as a server-rendered page would call it:
//                          {"session": {session, user} | null, "setCookie": [...]}.
//                          ?disableCookieCache=true reads the database, not the cache.
//   POST /test/sign-out    auth.api.signOut with the request's headers:
//                          {"response": {...}, "setCookie": [...]}.
//   GET  /test/accounts    The account records of the request's session user, as Better
//                          Auth's own adapter reads them (internalAdapter.findAccounts:
//                          tokens and dates included), or 401 without a session.
//   GET  /test/page        A page for a real browser: a sign-up and sign-in form and a
//                          sign-out button, run by Better Auth's own browser client
//                          (`createAuthClient` of better-auth/client), showing what each
//                          call returned (#result) and the client's getSession (#session).
//   GET  /test/client.js   That client, bundled for the browser by esbuild on first use.
// The test routes answer what Better Auth returned and the Set-Cookie headers it
// produced as JSON, never as real cookies, so a test sees every header verbatim; the
// page's calls go through /api/auth/* and set real cookies, as a front end's do.
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

// Keep stdout for the ready line: anything else printing there would be read as it.
console.log = console.error;
console.info = console.error;

// Packages live in tests/node, not next to this script.
const require = createRequire(new URL("../node/package.json", import.meta.url));
const load = (specifier) => import(pathToFileURL(require.resolve(specifier)).href);

const config = JSON.parse(process.argv[2] ?? process.env.BETTER_AUTH_HARNESS_CONFIG ?? "");

const server = createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}`;
const baseURL = config.baseURL ?? url;

async function waitForIndexes(db, wanted) {
  const deadline = Date.now() + 10_000;
  for (const [collection, fields] of Object.entries(wanted)) {
    for (;;) {
      const indexes = await db.collection(collection).listIndexes().toArray().catch(() => []);
      const keys = indexes.map((index) => Object.keys(index.key).join(","));
      if (fields.every((field) => keys.includes(field))) break;
      if (Date.now() > deadline) throw new Error(`no index on ${collection}.${fields} after 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

// The database in the form Better Auth takes it: an adapter for MongoDB, or a raw driver
// handle for SQL (Better Auth wraps it in its own Kysely adapter and knows the dialect).
let mongoDb = null;
async function openDatabase(database) {
  switch (database.kind) {
    case "mongodb": {
      const { MongoClient } = await load("mongodb");
      const { mongodbAdapter } = await load("better-auth/adapters/mongodb");
      const client = new MongoClient(database.url);
      await client.connect();
      // With the client, writes that belong together (a user and its account) run in
      // a transaction, as in a real deployment on a replica set.
      mongoDb = client.db(database.db);
      return mongodbAdapter(mongoDb, { client });
    }
    case "sqlite": {
      const { default: Database } = await load("better-sqlite3");
      return new Database(database.file);
    }
    case "postgres": {
      const { default: pg } = await load("pg");
      return new pg.Pool({ connectionString: database.url });
    }
    default:
      throw new Error(`unknown database kind: ${database.kind}`);
  }
}

const options = {
  secret: config.secret,
  baseURL,
  database: await openDatabase(config.database),
  emailAndPassword: { enabled: true, autoSignIn: true, requireEmailVerification: false },
  session: {
    ...(config.expiresIn !== undefined && { expiresIn: config.expiresIn }),
    ...(config.updateAge !== undefined && { updateAge: config.updateAge }),
    ...(config.cookieCache && { cookieCache: { enabled: true, ...config.cookieCache } }),
  },
  advanced: {
    ...(config.cookiePrefix !== undefined && { cookiePrefix: config.cookiePrefix }),
    ...(config.useSecureCookies !== undefined && { useSecureCookies: config.useSecureCookies }),
    // Better Auth skips its Origin check when NODE_ENV=test or TEST is set; the tests
    // must see the check a deployment has, whatever the environment says.
    disableOriginCheck: false,
  },
  // Tests sign in many times a second from one address.
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: {
    level: "info",
    log: (level, message, ...args) => console.error(`[better-auth ${level}] ${message}`, ...args),
  },
};

// SQL tables are exactly the ones Better Auth's own migrations create (`auth migrate`).
if (config.database.kind !== "mongodb") {
  const { getMigrations } = await load("better-auth/db/migration");
  const { runMigrations } = await getMigrations(options);
  await runMigrations();
}

const { betterAuth } = await load("better-auth");
const { toNodeHandler, fromNodeHeaders } = await load("better-auth/node");
const auth = betterAuth(options);
if (mongoDb !== null) {
  // The MongoDB adapter builds its indexes in the background once Better Auth is set up.
  // On a brand-new database the first sign-up's transaction can meet those catalog
  // changes and fail (SnapshotUnavailable): a deployment sees that at its very first
  // sign-up, the tests at every one. So the server waits for the builds before serving.
  await auth.$context;
  await waitForIndexes(mongoDb, { user: ["email"], session: ["token", "userId"] });
}
const authHandler = toNodeHandler(auth);

// The page: its script calls Better Auth through the bundled client. #result and
// #session hold JSON; their data-state is "ready" once the page has nothing pending.
const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Better Auth</title></head>
<body>
<h1>Better Auth</h1>
<form id="credentials">
  <label>Name <input name="name" autocomplete="name"></label>
  <label>Email <input name="email" type="email" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit" value="sign-up">Sign up</button>
  <button type="submit" value="sign-in">Sign in</button>
</form>
<button type="button" id="sign-out">Sign out</button>
<h2>Result</h2>
<pre id="result" data-state="ready">null</pre>
<h2>Session</h2>
<pre id="session" data-state="loading"></pre>
<script src="/test/client.js"></script>
<script>
  const client = window.betterAuthClient;
  const result = document.getElementById("result");
  const session = document.getElementById("session");
  const show = (element, value) => { element.textContent = JSON.stringify(value, null, 2); };

  async function refresh() {
    session.dataset.state = "loading";
    const { data, error } = await client.getSession();
    show(session, error ? { error } : data);
    session.dataset.state = "ready";
  }

  async function run(action, call) {
    result.dataset.state = "loading";
    result.dataset.action = action;
    let answer;
    try {
      const { data, error } = await call();
      answer = { data, error };
    } catch (thrown) {
      answer = { data: null, error: { message: String(thrown) } };
    }
    await refresh();
    show(result, answer);
    result.dataset.state = "ready";
  }

  document.getElementById("credentials").addEventListener("submit", (event) => {
    event.preventDefault();
    const fields = new FormData(event.target);
    const email = fields.get("email");
    const password = fields.get("password");
    if (event.submitter.value === "sign-up") {
      const name = fields.get("name");
      run("sign-up", () => client.signUp.email({ email, password, name }));
    } else {
      run("sign-in", () => client.signIn.email({ email, password }));
    }
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    run("sign-out", () => client.signOut());
  });
  refresh();
</script>
</body>
</html>
`;

let clientBundle;

// better-auth/client for the browser, as one script (built once, on first request).
async function bundleClient() {
  const { build } = await load("esbuild");
  const built = await build({
    entryPoints: [new URL("./better_auth_client.mjs", import.meta.url).pathname],
    nodePaths: [new URL("../node/node_modules", import.meta.url).pathname],
    bundle: true,
    format: "iife",
    platform: "browser",
    define: { "process.env.NODE_ENV": '"production"' },
    write: false,
    logLevel: "warning",
  });
  return built.outputFiles[0].text;
}

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

// Calls an auth.api endpoint as server code does; an APIError becomes its HTTP status.
async function callApi(res, endpoint, request) {
  try {
    const { headers, response } = await endpoint({ ...request, returnHeaders: true });
    return { response, setCookie: headers?.getSetCookie() ?? [] };
  } catch (error) {
    if (typeof error?.statusCode !== "number") throw error;
    sendJson(res, error.statusCode, { error: error.body ?? { message: error.message } });
    return null;
  }
}

server.on("request", async (req, res) => {
  const { pathname, searchParams } = new URL(req.url, url);
  try {
    if (pathname.startsWith("/api/auth/")) {
      await authHandler(req, res);
      return;
    }
    const headers = fromNodeHeaders(req.headers);
    if (req.method === "GET" && pathname === "/test/session") {
      const query = { disableCookieCache: searchParams.get("disableCookieCache") === "true" };
      const result = await callApi(res, auth.api.getSession, { headers, query });
      if (result) sendJson(res, 200, { session: result.response, setCookie: result.setCookie });
      return;
    }
    if (req.method === "POST" && pathname === "/test/sign-out") {
      const result = await callApi(res, auth.api.signOut, { headers });
      if (result) sendJson(res, 200, result);
      return;
    }
    if (req.method === "GET" && pathname === "/test/accounts") {
      const query = { disableCookieCache: true };
      const result = await callApi(res, auth.api.getSession, { headers, query });
      if (!result) return;
      if (!result.response) {
        sendJson(res, 401, { error: { message: "no session" } });
        return;
      }
      const { internalAdapter } = await auth.$context;
      sendJson(res, 200, await internalAdapter.findAccounts(result.response.user.id));
      return;
    }
    if (req.method === "GET" && pathname === "/test/page") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
      return;
    }
    if (req.method === "GET" && pathname === "/test/client.js") {
      clientBundle ??= bundleClient();
      const script = await clientBundle.catch((error) => {
        clientBundle = undefined;
        throw error;
      });
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(script);
      return;
    }
    sendJson(res, 404, { error: `no route ${req.method} ${pathname}` });
  } catch (error) {
    console.error(error);
    if (!res.headersSent) sendJson(res, 500, { error: String(error?.stack ?? error) });
  }
});

process.stdout.write(`${JSON.stringify({ port: server.address().port, url, baseURL })}\n`);
