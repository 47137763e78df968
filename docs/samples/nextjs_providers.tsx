// app/providers.tsx: useSession(), signIn() and signOut() talk to the Python routes.
"use client";
import type { ReactNode } from "react";
import { SessionProvider } from "next-auth/react";

export function Providers({ children }: { children: ReactNode }) {
  // The Python service's base_path, on this origin (next.config.ts passes it on).
  return <SessionProvider basePath="/auth">{children}</SessionProvider>;
}
