// A Next.js app's view of a request: @auth/core's own handler answers GET /api/auth/session.
//
// stdin:  {"secret": "..." | [...], "cookie": "<Cookie header>", "url": "http://host/api/auth/session"}
// stdout: {"status": 200, "body": <session JSON or null>, "setCookie": ["..."]}
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const { Auth } = await import(pathToFileURL(require.resolve("@auth/core")).href);

const options = JSON.parse(readFileSync(0, "utf8"));
const errors = [];
const response = await Auth(
  new Request(options.url, { headers: { cookie: options.cookie } }),
  {
    secret: options.secret,
    trustHost: true,
    basePath: "/api/auth",
    providers: [],
    session: { strategy: "jwt" },
    logger: { error: (error) => errors.push(String(error)), warn: () => {}, debug: () => {} },
  },
);
const text = await response.text();
process.stdout.write(
  JSON.stringify({
    status: response.status,
    body: text ? JSON.parse(text) : null,
    setCookie: response.headers.getSetCookie(),
    errors,
  }),
);
