// A real OpenID Connect provider (the certified `oidc-provider` package) for the Python tests.
//
// stdin: one JSON document, read once at start:
//   {"clients": [{"client_id", "client_secret", "redirect_uris": [...], ...}],
//    "jwks": {"keys": [<private JWK>, ...]}, "accessTokenTtl": 3600}
// stdout: one line {"issuer": "http://127.0.0.1:<port>"} once the provider listens on a
// free loopback port. The process serves until it is terminated.
//
// Sign-in uses the package's own development login and consent forms: any login name
// signs in as that account, whose claims are derived from the name (see findAccount).
// Refresh tokens are issued to every client allowed the refresh_token grant and are
// rotated on each use. GET /_test/stats counts successful and failed grants by type and
// requests by path, so tests can tell how often an endpoint was really used.
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const load = (specifier) => import(pathToFileURL(require.resolve(specifier)).href);

const { default: Provider } = await load("oidc-provider");

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

const settings = await readStdin();

// Claims of the account a login name stands for: "alice" is alice@example.com.
function findAccount(_ctx, id) {
  const name = id.charAt(0).toUpperCase() + id.slice(1);
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        name,
        email: `${id}@example.com`,
        email_verified: true,
        picture: `https://img.example.com/${id}.png`,
      };
    },
  };
}

const stats = { success: {}, error: {}, paths: {} };
const count = (bucket, ctx) => {
  const grantType = ctx.oidc?.params?.grant_type ?? "unknown";
  bucket[grantType] = (bucket[grantType] ?? 0) + 1;
};

const server = createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: settings.clients,
  jwks: settings.jwks,
  findAccount,
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "picture"],
  },
  scopes: ["openid", "offline_access", "email", "profile"],
  cookies: { keys: ["oidc-provider test cookie key"] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: settings.accessTokenTtl ?? 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 24 * 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 24 * 3600,
  },
  renderError: async (ctx, out) => {
    ctx.type = "json";
    ctx.body = out;
  },
});

provider.on("grant.success", (ctx) => count(stats.success, ctx));
provider.on("grant.error", (ctx) => count(stats.error, ctx));
provider.use(async (ctx, next) => {
  if (ctx.path === "/_test/stats") {
    ctx.type = "json";
    ctx.body = stats;
    return;
  }
  stats.paths[ctx.path] = (stats.paths[ctx.path] ?? 0) + 1;
  await next();
});

server.on("request", provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
