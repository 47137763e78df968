// The browser-side client of Auth.js v5 (`next-auth/react`), unchanged, against a live server.
//
// stdin:  {"authUrl": "http://127.0.0.1:<port>/auth", "email": "...", "password": "...",
//          "wrongPassword": "...", "customCodeEmail": "...", "callbackUrl": "/dashboard"}
// stdout: {"csrfToken", "wrongPassword", "customCode", "signedIn", "session",
//          "cookiesSignedIn", "signOut", "sessionSignedOut", "cookiesSignedOut", "requests"}
//
// Run outside a browser, the client builds absolute URLs from NEXTAUTH_URL (origin and
// base path), which it reads once, when the module loads. It falls back to
// `window.location.href` when a call names no callbackUrl, so every call here names one.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const options = JSON.parse(readFileSync(0, "utf8"));
process.env.NEXTAUTH_URL = options.authUrl;
const origin = new URL(options.authUrl).origin;

// Node's fetch keeps no cookies; a browser would. This jar keeps the app's cookies
// across calls as a browser does for one site, and lets nothing leave for another origin.
const jar = new Map();
const requests = [];
const nodeFetch = globalThis.fetch;

function remember(setCookie) {
  const [pair, ...attributes] = setCookie.split(";");
  const equals = pair.indexOf("=");
  const name = pair.slice(0, equals).trim();
  const value = pair.slice(equals + 1).trim();
  const expired = attributes.some((attribute) => {
    const split = attribute.indexOf("=");
    const key = (split < 0 ? attribute : attribute.slice(0, split)).trim().toLowerCase();
    const text = split < 0 ? "" : attribute.slice(split + 1).trim();
    return (key === "max-age" && Number(text) <= 0) || (key === "expires" && Date.parse(text) <= Date.now());
  });
  if (expired) jar.delete(name);
  else jar.set(name, value);
}

globalThis.fetch = async (input, init = {}) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.origin !== origin) throw new Error(`request outside the app under test: ${url}`);
  const headers = new Headers(init.headers);
  if (jar.size) headers.set("cookie", [...jar].map(([name, value]) => `${name}=${value}`).join("; "));
  // Every call the client makes expects its answer directly; a redirect shows up in
  // the log with its status instead of being followed without the jar.
  const response = await nodeFetch(url, { ...init, headers, redirect: "manual" });
  response.headers.getSetCookie().forEach(remember);
  requests.push(`${(init.method ?? "GET").toUpperCase()} ${url.pathname} ${response.status}`);
  return response;
};

const require = createRequire(new URL("../node/package.json", import.meta.url));
const { getCsrfToken, getSession, signIn, signOut } = await import(
  pathToFileURL(require.resolve("next-auth/react")).href
);

// A call that throws (say, on an answer that is not JSON) is reported in place of its
// result, so the other steps still run and are checked on their own.
async function attempt(call) {
  try {
    return await call();
  } catch (error) {
    return { thrown: String(error) };
  }
}

const { callbackUrl } = options;
const provider = options.provider ?? "credentials";
const csrfToken = await attempt(() => getCsrfToken());
const wrongPassword = await attempt(() =>
  signIn(provider, {
    redirect: false,
    callbackUrl,
    email: options.email,
    password: options.wrongPassword,
  }),
);
const customCode = await attempt(() =>
  signIn(provider, {
    redirect: false,
    callbackUrl,
    email: options.customCodeEmail,
    password: options.password,
  }),
);
const signedIn = await attempt(() =>
  signIn(provider, {
    redirect: false,
    callbackUrl,
    email: options.email,
    password: options.password,
  }),
);
const session = await attempt(() => getSession());
const cookiesSignedIn = [...jar.keys()].sort();
const signedOut = await attempt(() => signOut({ redirect: false, callbackUrl: "/" }));
const sessionSignedOut = await attempt(() => getSession());
const cookiesSignedOut = [...jar.keys()].sort();

const result = {
  csrfToken,
  wrongPassword,
  customCode,
  signedIn,
  session,
  cookiesSignedIn,
  signOut: signedOut,
  sessionSignedOut,
  cookiesSignedOut,
  requests,
};
// The client opens BroadcastChannels to tell other tabs and never closes them; they
// would keep Node running after the output is written.
process.stdout.write(JSON.stringify(result), () => process.exit(0));
