// auth.config.ts: the Next.js app's Auth.js configuration, shared with the Python service.
import type { NextAuthConfig } from "next-auth";
import Credentials from "next-auth/providers/credentials";

// --8<-- [start:users]
// Stands in for your user lookup; the Python service checks the same users.
const DEMO_USERS: Record<string, { id: string; name: string; role: string; password: string }> = {
  "ada@example.com": { id: "user-ada", name: "Ada", role: "admin", password: "demo-password" },
};

async function authorize(credentials: Partial<Record<string, unknown>>) {
  const email = String(credentials.email ?? "").toLowerCase();
  const user = DEMO_USERS[email];
  if (!user || user.password !== credentials.password) return null;
  return { id: user.id, name: user.name, email, role: user.role };
}
// --8<-- [end:users]

// --8<-- [start:config]
// "example.com" in production: the cookie reaches example.com and api.example.com alike.
const cookieDomain = process.env.AUTH_COOKIE_DOMAIN || undefined;

export default {
  // AUTH_SECRET comes from the environment: the same value in both apps.
  providers: [Credentials({ credentials: { email: {}, password: {} }, authorize })],
  session: { strategy: "jwt", maxAge: 30 * 24 * 60 * 60, updateAge: 24 * 60 * 60 },
  cookies: { sessionToken: { options: { domain: cookieDomain } } },
  callbacks: {
    jwt({ token, user }) {
      if (user) token.role = (user as { role?: string }).role; // at sign-in only
      return token;
    },
    session({ session, token }) {
      session.user.id = token.sub as string;
      (session.user as { role?: unknown }).role = token.role;
      return session;
    },
  },
} satisfies NextAuthConfig;
// --8<-- [end:config]
