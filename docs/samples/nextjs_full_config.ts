// auth.config.ts of a Next.js app about to move its back end to Python.
import type { NextAuthConfig } from "next-auth";
import Credentials from "next-auth/providers/credentials";
import GitHub from "next-auth/providers/github";

// Stands in for your user lookup.
const DEMO_USERS: Record<string, { id: string; name: string; role: string; password: string }> = {
  "ada@example.com": { id: "user-ada", name: "Ada", role: "admin", password: "demo-password" },
  "eve@blocked.example": { id: "user-eve", name: "Eve", role: "member", password: "demo-password" },
};

async function authorize(credentials: Partial<Record<string, unknown>>) {
  const email = String(credentials.email ?? "").toLowerCase();
  const user = DEMO_USERS[email];
  if (!user || user.password !== credentials.password) return null;
  return { id: user.id, name: user.name, email, role: user.role };
}

// Stands in for your audit log.
function audit(event: string, userId: string | undefined) {
  process.stderr.write(`audit: ${event} ${userId}\n`);
}

export default {
  trustHost: true,
  providers: [Credentials({ credentials: { email: {}, password: {} }, authorize }), GitHub],
  session: { strategy: "jwt", maxAge: 7 * 24 * 60 * 60, updateAge: 60 * 60 },
  pages: { signIn: "/login", error: "/login/error", newUser: "/welcome" },
  callbacks: {
    signIn({ user }) {
      return !user.email?.endsWith("@blocked.example");
    },
    jwt({ token, user, trigger, session }) {
      if (user) token.role = (user as { role?: string }).role;
      if (trigger === "update" && session?.theme) token.theme = session.theme;
      return token;
    },
    session({ session, token }) {
      session.user.id = token.sub as string;
      (session.user as { role?: unknown }).role = token.role;
      if (token.theme) (session as { theme?: unknown }).theme = token.theme;
      return session;
    },
  },
  events: {
    signIn({ user }) {
      audit("sign-in", user.id);
    },
  },
} satisfies NextAuthConfig;
