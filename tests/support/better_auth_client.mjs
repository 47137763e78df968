// Better Auth's browser client (`better-auth/client`), unchanged, for the harness's page.
//
// The harness bundles it for the browser with esbuild (GET /test/client.js), as a front
// end's build would. The client talks to the origin that served the page.
import { createAuthClient } from "better-auth/client";

window.betterAuthClient = createAuthClient({ baseURL: window.location.origin });
