// auth-client.ts: the browser's side. One origin serves both halves (a proxy sends
// /api/auth/* to the Node app and the API's paths to Python), so no URL is needed.
import { createAuthClient } from "better-auth/client"; // or "better-auth/react"

export const authClient = createAuthClient(); // Better Auth's routes at /api/auth

// The Python API: the browser sends Better Auth's cookies with the request by itself.
export async function me(): Promise<{ id: string; name: string } | null> {
  const response = await fetch("/api/me");
  return response.ok ? await response.json() : null;
}

// For example: sign up with Better Auth, then ask the Python API who is signed in.
export async function signUpThenAskTheApi(name: string, email: string, password: string) {
  const { error } = await authClient.signUp.email({ name, email, password });
  if (error) throw new Error(error.message);
  return await me(); // { id, name }: the user Better Auth just created
}
