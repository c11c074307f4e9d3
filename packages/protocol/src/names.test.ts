import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  agentIdSchema,
  assertAgentId,
  assertNameToken,
  assertProjectId,
  deriveAgentId,
  deriveProjectId,
  NAME_TOKEN_RE,
  nameToken,
  nameTokenProblem,
  PROJECT_ID_RE,
  projectIdProblem,
  projectIdSchema,
} from "./names.js";
import { canRead } from "./scopes.js";
import { buckets, consumers, keys, natsLayoutMarkdown, streams, subjects } from "./subjects.js";

const NATS_TOKEN = /^[^\s.*>]+$/;
const STREAM_NAME = /^[A-Za-z0-9_-]{1,255}$/;
const BUCKET_NAME = /^[A-Za-z0-9_-]+$/;

const tokenArb = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,63}$/);
const projectArb = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,47}$/);
const agentArb = fc.stringMatching(/^[0-9a-f]{32}$/);

describe("accepted names always make valid NATS names", () => {
  it("every accepted channel/capability/boundary yields valid subject tokens and names", () => {
    fc.assert(
      fc.property(projectArb, tokenArb, tokenArb, agentArb, (p, a, b, agent) => {
        for (const s of [
          subjects.channel(p, a),
          subjects.workOffer(p, a, b),
          subjects.dlq(p, a),
          subjects.inbox(p, agent),
          subjects.agentControl(p, agent),
        ]) {
          for (const token of s.split(".")) expect(token).toMatch(NATS_TOKEN);
        }
        for (const n of [streams.channel(p, a), streams.work(p), streams.dlq(p), streams.inbox(p)]) {
          expect(n).toMatch(STREAM_NAME);
        }
        expect(consumers.work(a, b)).toMatch(STREAM_NAME);
        for (const n of [
          buckets.workLedger(p),
          buckets.memory(p),
          buckets.memoryEphemeral(p),
          buckets.shuttle(p),
          buckets.targets(p),
        ]) {
          expect(n).toMatch(BUCKET_NAME);
        }
        expect(keys.registry(p, agent).split(".")).toHaveLength(2);
      }),
      { numRuns: 300 },
    );
  });
});

describe("rejected names say which rule they break", () => {
  const cases: Array<[string, RegExp]> = [
    ["has.dot", /contains '\.'/],
    ["star*", /wildcard/],
    ["gt>", /wildcard/],
    ["white space", /whitespace/],
    ["tab\there", /whitespace/],
    ["Upper", /upper case/],
    ["", /must not be empty/],
    ["-leading", /must start with/],
    ["ümlaut", /must start with/],
    ["a-ümlaut", /may contain only/],
    ["a".repeat(65), /65 characters; the limit is 64/],
  ];
  it.each(cases)("name token %j", (value, rule) => {
    expect(nameTokenProblem(value, "channel")).toMatch(rule);
    expect(() => assertNameToken(value, "channel")).toThrow(rule);
    const parsed = nameToken("channel").safeParse(value);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(rule);
  });

  it("the published JSON Schema of names and ids carries their rule as a pattern, through describe()", () => {
    const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input" }) as { pattern?: string };
    expect(json(nameToken("channel").describe("a channel")).pattern).toBe(NAME_TOKEN_RE.source);
    expect(json(nameToken().optional().describe("x"))).toMatchObject({ pattern: NAME_TOKEN_RE.source });
    expect(json(agentIdSchema).pattern).toBe("^[0-9a-f]{32}$");
    expect(json(projectIdSchema).pattern).toBe(PROJECT_ID_RE.source);
    // The error still names the broken rule, not the pattern.
    expect(nameToken("channel").safeParse("Upper").error?.issues[0]?.message).toMatch(/upper case/);
  });

  it("any string with a forbidden character is rejected", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.constantFrom(".", "*", ">", " ", "\n", "A"),
        fc.string(),
        (pre, bad, post) => {
          const candidate = `a${pre}${bad}${post}`;
          expect(nameTokenProblem(candidate)).toBeDefined();
          expect(projectIdProblem(candidate)).toBeDefined();
        },
      ),
    );
  });

  it("a name is valid exactly when it matches its pattern", () => {
    // The checks accept a matching name without the rule-by-rule walk, which must then reject every other.
    const near = fc.stringMatching(/^[a-zA-Z0-9_. *>\n-]{0,70}$/);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 70 }), near, tokenArb, projectArb), (candidate) => {
        expect(nameTokenProblem(candidate) === undefined).toBe(NAME_TOKEN_RE.test(candidate));
        expect(projectIdProblem(candidate) === undefined).toBe(
          PROJECT_ID_RE.test(candidate) &&
            !["personal", "public"].includes(candidate) &&
            !candidate.endsWith("-ephemeral"),
        );
      }),
    );
  });

  it("project ids reject underscore and over-length", () => {
    expect(projectIdProblem("my_proj")).toMatch(/'_'/);
    expect(projectIdProblem("p".repeat(49))).toMatch(/limit is 48/);
    expect(() => assertProjectId("Bad")).toThrow(/projectId "Bad" contains upper case/);
  });

  it("agent ids are exactly 32 lower-case hex", () => {
    expect(() => assertAgentId("ABC")).toThrow(/32 lower-case hex/);
    expect(assertAgentId("0123456789abcdef0123456789abcdef")).toHaveLength(32);
  });

  it("subject builders refuse bad input instead of building a subject", () => {
    expect(() => subjects.channel("proj", "a.b")).toThrow(/channel "a\.b" contains '\.'/);
    expect(() => subjects.workOffer("proj", "default", "x>")).toThrow(/capability/);
  });
});

describe("derivations", () => {
  it("projectId is 16 hex of the path and stable", () => {
    const id = deriveProjectId("/home/me/project");
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(deriveProjectId("/home/me/project")).toBe(id);
    expect(deriveProjectId("/home/me/other")).not.toBe(id);
  });

  it("agentId depends on host, path and agent name", () => {
    const base = { hostname: "h", projectPath: "/p", agentName: "default" };
    const id = deriveAgentId(base);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(deriveAgentId({ ...base, agentName: "second" })).not.toBe(id);
    expect(deriveAgentId({ ...base, hostname: "h2" })).not.toBe(id);
    expect(() => deriveAgentId({ ...base, agentName: "Bad Name" })).toThrow(/agent name/);
  });
});

describe("scopes", () => {
  const a = { projectId: "p1", agentId: "a", userId: "u1" };
  it.each([
    ["private", { projectId: "p1", agentId: "a", userId: "u1" }, true],
    ["private", { projectId: "p1", agentId: "b", userId: "u1" }, false],
    ["private", { projectId: "p2", agentId: "a", userId: "u1" }, false],
    ["personal", { projectId: "p2", agentId: "z", userId: "u1" }, true],
    ["personal", { projectId: "p1", agentId: "a", userId: "u2" }, false],
    ["team", { projectId: "p1", agentId: "b", userId: "u2" }, true],
    ["team", { projectId: "p2", agentId: "a", userId: "u1" }, false],
    ["public", { projectId: "p9", agentId: "q", userId: "u9" }, true],
  ] as const)("%s readable by %j: %s", (scope, reader, expected) => {
    expect(canRead(scope, a, reader)).toBe(expected);
  });
});

describe("layout table", () => {
  it("is rendered from the name functions", () => {
    const md = natsLayoutMarkdown();
    expect(md).toContain("`loom.myproj.chan.roadmap`");
    expect(md).toContain("loom-work-myproj");
    expect(md.split("\n").length).toBeGreaterThan(10);
  });
});
