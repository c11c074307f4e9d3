import type { MemoryStore } from "../store.js";

/** What the Pattern tools need: the store of the calling agent and its project directory (for export/import). */
export interface PatternToolDeps {
  store: MemoryStore;
  projectDir: string;
}
