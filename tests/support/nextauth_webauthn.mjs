// Auth.js's browser client for passkeys (`next-auth/webauthn`), unchanged, for a page.
//
// esbuild bundles it (with @simplewebauthn/browser and next-auth/react) into one script
// for the browser. The client reads its base path from `process.env.NEXTAUTH_URL` when
// the module loads, as next-auth/react does, so the page defines `window.process` first.
import { signIn } from "next-auth/webauthn";

window.nextAuthWebAuthn = { signIn };
