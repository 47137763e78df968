// auth.ts: what the rest of the Next.js app imports (the route handler, server components).
import NextAuth from "next-auth";
import authConfig from "./auth.config";

export const { handlers, auth, signIn, signOut } = NextAuth(authConfig);

// app/api/auth/[...nextauth]/route.ts is then two lines:
//   import { handlers } from "@/auth";
//   export const { GET, POST } = handlers;
