// Selectors name nodes by id, by a glob over ids or by a label; each parses back to its text, and
// matching follows the wire's id alphabet exactly.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { matches, matchesAny, parseSelector, selectorText, type Selector } from "../../src/selectors.js";
import { isId } from "../../src/wire/protocol.js";

function selector(text: string): Selector {
  const s = parseSelector(text);
  if (typeof s === "string") throw new Error(s);
  return s;
}

const TEAM_PAYMENTS = { team: "payments", tier: "1" };

describe("parseSelector", () => {
  it("reads a node id, a glob and a label, and gives each back as written", () => {
    expect(selector("web-1")).toEqual({ kind: "id", id: "web-1" });
    expect(selector("web-*")).toMatchObject({ kind: "glob", pattern: "web-*" });
    expect(selector("label:team=payments")).toEqual({ kind: "label", key: "team", value: "payments" });
    for (const text of ["web-1", "007", "web-*", "db-?", "*", "?x*", "label:team=payments", "label:a=b=c"])
      expect(selectorText(selector(text))).toBe(text);
  });

  it("takes a label value with '=' in it whole: the key ends at the first '='", () => {
    expect(selector("label:url=a=b")).toEqual({ kind: "label", key: "url", value: "a=b" });
  });

  it("refuses what is none of the three, saying so", () => {
    expect(parseSelector("we b")).toBe('"we b" is not a node id, glob or label:KEY=VALUE');
    for (const text of ["", "-web", ".x", "web/1", "web[1]", "x".repeat(65), "*".repeat(65), "wéb"])
      expect(parseSelector(text), text).toEqual(expect.stringContaining("is not a node id, glob"));
    for (const text of ["label:team", "label:=payments", "label:team=", "label:"])
      expect(parseSelector(text), text).toEqual(expect.stringContaining("is not label:KEY=VALUE"));
  });

  it("takes as an id exactly what the wire takes as a node id", () => {
    const chars = fc.constantFrom(..."ab9._-*? /=:".split(""));
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 70 }), (list) => {
        const text = list.join("");
        const s = parseSelector(text);
        expect(typeof s !== "string" && s.kind === "id").toBe(isId(text));
      }),
    );
  });
});

describe("matches", () => {
  it("matches an id exactly", () => {
    expect(matches(selector("web-1"), "web-1", null)).toBe(true);
    expect(matches(selector("web-1"), "web-10", null)).toBe(false);
    expect(matches(selector("web-1"), "Web-1", null)).toBe(false);
  });

  it("matches a glob over the whole id: * any run of characters, ? exactly one, . only a dot", () => {
    const web = selector("web-*");
    expect(["web-", "web-1", "web-1.eu"].map((id) => matches(web, id, null))).toEqual([true, true, true]);
    expect(["web", "xweb-1", "api-web-1"].map((id) => matches(web, id, null))).toEqual([false, false, false]);
    const db = selector("db-?");
    expect(["db-1", "db-12", "db-"].map((id) => matches(db, id, null))).toEqual([true, false, false]);
    const dotted = selector("a.?");
    expect(["a.1", "ab1"].map((id) => matches(dotted, id, null))).toEqual([true, false]);
    expect(matches(selector("*"), "anything-at-all", null)).toBe(true);
    expect(matches(selector("*-1"), "web-1", null)).toBe(true);
  });

  it("matches a label by exact key and value, never a node without labels", () => {
    const team = selector("label:team=payments");
    expect(matches(team, "x", TEAM_PAYMENTS)).toBe(true);
    expect(matches(team, "x", { team: "payments-eu" })).toBe(false);
    expect(matches(team, "x", { Team: "payments" })).toBe(false);
    expect(matches(team, "x", null)).toBe(false);
    expect(matches(selector("label:team=payments"), "label:team=payments", null)).toBe(false);
  });

  it("does not find a label in the labels' prototype", () => {
    expect(matches(selector("label:constructor=x"), "a", {})).toBe(false);
    expect(matches(selector("label:toString=x"), "a", { team: "a" })).toBe(false);
  });

  it("matchesAny: any of a list, none of an empty one", () => {
    const list = ["db-1", "web-*", "label:team=payments"].map(selector);
    expect(matchesAny(list, "db-1", null)).toBe(true);
    expect(matchesAny(list, "web-3", null)).toBe(true);
    expect(matchesAny(list, "api-1", TEAM_PAYMENTS)).toBe(true);
    expect(matchesAny(list, "api-1", { team: "search" })).toBe(false);
    expect(matchesAny([], "db-1", null)).toBe(false);
  });

  it("agrees with a plain reading of the glob on any id", () => {
    const idChars = fc.constantFrom(..."ab1.-_".split(""));
    const globChars = fc.constantFrom(..."ab1.-_*?".split(""));
    /** The glob read literally, by backtracking: the reference the compiled form must agree with. */
    const reference = (p: string, s: string): boolean => {
      if (p === "") return s === "";
      if (p[0] === "*") return reference(p.slice(1), s) || (s !== "" && reference(p, s.slice(1)));
      return s !== "" && (p[0] === "?" || p[0] === s[0]) && reference(p.slice(1), s.slice(1));
    };
    fc.assert(
      fc.property(
        fc.tuple(fc.constantFrom("a", "b", "*", "?"), fc.array(globChars, { maxLength: 8 })),
        fc.tuple(fc.constantFrom("a", "b", "1"), fc.array(idChars, { maxLength: 10 })),
        ([first, rest], [idFirst, idRest]) => {
          const pattern = first + rest.join("");
          const id = idFirst + idRest.join("");
          expect(matches(selector(pattern), id, null)).toBe(reference(pattern, id));
        },
      ),
    );
  });
});
