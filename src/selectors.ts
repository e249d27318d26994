// Selectors: how an operator names a set of nodes, in a maintenance window and in `hb maint`.
// One is a node id (`web-1`), a glob over ids (`web-*`, `db-?`: only `*` and `?` are special),
// or `label:KEY=VALUE` (the node's label KEY is exactly VALUE). Parsed once, with a glob compiled
// to a RegExp then, so that matching a node is one comparison or one regular-expression test.

export type Selector =
  | { readonly kind: "id"; readonly id: string }
  | { readonly kind: "glob"; readonly pattern: string; readonly re: RegExp }
  | { readonly kind: "label"; readonly key: string; readonly value: string };

/** The wire's id alphabet (isId in wire/protocol.ts), which a shared module cannot import. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The same alphabet with the two wildcards, which may also come first. */
const GLOB = /^[A-Za-z0-9*?][A-Za-z0-9._*?-]{0,63}$/;
const LABEL_PREFIX = "label:";

/** A selector, or why `text` is not one. */
export function parseSelector(text: string): Selector | string {
  if (text.startsWith(LABEL_PREFIX)) {
    const rest = text.slice(LABEL_PREFIX.length);
    const eq = rest.indexOf("=");
    if (eq <= 0 || eq === rest.length - 1)
      return `${JSON.stringify(text)} is not label:KEY=VALUE (both KEY and VALUE non-empty)`;
    return Object.freeze({ kind: "label", key: rest.slice(0, eq), value: rest.slice(eq + 1) });
  }
  if (ID.test(text)) return Object.freeze({ kind: "id", id: text });
  if (GLOB.test(text)) return Object.freeze({ kind: "glob", pattern: text, re: compile(text) });
  return `${JSON.stringify(text)} is not a node id, glob or label:KEY=VALUE`;
}

/** `*` is any run of id characters, `?` exactly one; `.` is the only other character to escape. */
function compile(pattern: string): RegExp {
  let source = "";
  for (const c of pattern) source += c === "*" ? ".*" : c === "?" ? "." : c === "." ? "\\." : c;
  return new RegExp(`^${source}$`);
}

/** The text the selector was parsed from. */
export function selectorText(s: Selector): string {
  switch (s.kind) {
    case "id":
      return s.id;
    case "glob":
      return s.pattern;
    case "label":
      return `${LABEL_PREFIX}${s.key}=${s.value}`;
  }
}

export function matches(s: Selector, id: string, labels: Readonly<Record<string, string>> | null): boolean {
  switch (s.kind) {
    case "id":
      return s.id === id;
    case "glob":
      return s.re.test(id);
    case "label":
      // Own labels only: a key such as "constructor" must not find Object.prototype's.
      return labels !== null && Object.hasOwn(labels, s.key) && labels[s.key] === s.value;
  }
}

export function matchesAny(
  list: readonly Selector[],
  id: string,
  labels: Readonly<Record<string, string>> | null,
): boolean {
  for (const s of list) if (matches(s, id, labels)) return true;
  return false;
}
