/**
 * Structural checks shared by every format: duplicate ids, dependencies on ids that do not exist, and
 * cycles. Iterative throughout, so a 10,000-stage chain cannot exhaust the call stack.
 */
import type { FieldIssue } from "../config/errors.ts";
import { didYouMean } from "./suggest.ts";

export interface CheckedDependency {
  readonly id: string;
  /** Path of the field that declares the dependency, for messages. */
  readonly field: string;
}

export interface CheckedNode {
  readonly id: string;
  /** Path of the node itself, for messages. */
  readonly field: string;
  readonly dependencies: readonly CheckedDependency[];
}

export interface GraphCheckWording {
  /** "stage" or "node". */
  readonly noun: string;
  /** How to fix a dependency on an unknown id. */
  readonly danglingFix: string;
  /** How to break a cycle. */
  readonly cycleFix: string;
}

const MAX_CYCLES_REPORTED = 3;

export function findGraphIssues(nodes: readonly CheckedNode[], wording: GraphCheckWording): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const byId = new Map<string, CheckedNode>();
  for (const node of nodes) {
    const first = byId.get(node.id);
    if (first) {
      issues.push({ field: `${node.field}.id`, message: `duplicate ${wording.noun} id '${node.id}' (also at ${first.field}): give every ${wording.noun} its own id` });
    } else {
      byId.set(node.id, node);
    }
  }
  for (const node of nodes) {
    const seen = new Set<string>();
    for (const dep of node.dependencies) {
      if (dep.id === node.id) {
        issues.push({ field: dep.field, message: `${wording.noun} '${node.id}' depends on itself: ${wording.cycleFix}` });
      } else if (!byId.has(dep.id)) {
        issues.push({ field: dep.field, message: `unknown ${wording.noun} '${dep.id}'${didYouMean(dep.id, byId.keys())}: ${wording.danglingFix}` });
      } else if (seen.has(dep.id) && wording.noun === "stage") {
        issues.push({ field: dep.field, message: `'${dep.id}' is listed twice: list each needed stage once` });
      }
      seen.add(dep.id);
    }
  }
  // Cycles only make sense once every id resolves and is unique.
  if (issues.length === 0) issues.push(...findCycles([...byId.values()], wording));
  return issues;
}

/** Kahn's algorithm; what it cannot order lies on or behind a cycle, and walking back from there finds one. */
function findCycles(nodes: readonly CheckedNode[], wording: GraphCheckWording): FieldIssue[] {
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const node of nodes) {
    const unique = new Set(node.dependencies.map((d) => d.id));
    indegree.set(node.id, unique.size);
    for (const dep of unique) {
      let list = dependents.get(dep);
      if (!list) dependents.set(dep, (list = []));
      list.push(node.id);
    }
  }
  const queue = nodes.filter((n) => indegree.get(n.id) === 0).map((n) => n.id);
  for (let head = 0; head < queue.length; head++) {
    for (const next of dependents.get(queue[head]!) ?? []) {
      const left = indegree.get(next)! - 1;
      indegree.set(next, left);
      if (left === 0) queue.push(next);
    }
  }
  if (queue.length === nodes.length) return [];

  const byId = new Map(nodes.map((n) => [n.id, n]));
  const order = new Map(nodes.map((n, i) => [n.id, i]));
  const remaining = (id: string) => indegree.get(id)! > 0;
  const walked = new Set<string>();
  const issues: FieldIssue[] = [];
  for (const start of nodes) {
    if (issues.length >= MAX_CYCLES_REPORTED) break;
    if (!remaining(start.id) || walked.has(start.id)) continue;
    // Every unordered node has an unordered dependency, so this walk must revisit a node.
    const path: string[] = [];
    const position = new Map<string, number>();
    let current = start.id;
    while (!position.has(current) && !walked.has(current)) {
      position.set(current, path.length);
      path.push(current);
      walked.add(current);
      current = byId.get(current)!.dependencies.find((d) => remaining(d.id))!.id;
    }
    if (!position.has(current)) continue; // reached a cycle reported already
    // The walk follows dependencies backwards; reverse it so the message reads in execution order.
    const reversed = path.slice(position.get(current)!).reverse();
    // Start at the node declared first, so the report does not depend on where the walk began.
    let earliest = 0;
    for (let i = 1; i < reversed.length; i++) if (order.get(reversed[i]!)! < order.get(reversed[earliest]!)!) earliest = i;
    const cycle = [...reversed.slice(earliest), ...reversed.slice(0, earliest)];
    const first = byId.get(cycle[0]!)!;
    const closing = first.dependencies.find((d) => d.id === cycle[cycle.length - 1])!;
    issues.push({ field: closing.field, message: `cycle between ${wording.noun}s: ${describeCycle(cycle)}; ${wording.cycleFix}` });
  }
  return issues;
}

const CYCLE_IDS_SHOWN = 12;

function describeCycle(cycle: readonly string[]): string {
  const quoted = [...cycle, cycle[0]!].map((id) => `'${id}'`);
  if (quoted.length <= CYCLE_IDS_SHOWN) return quoted.join(" → ");
  const omitted = quoted.length - CYCLE_IDS_SHOWN;
  return [...quoted.slice(0, CYCLE_IDS_SHOWN - 3), `… ${omitted} more …`, ...quoted.slice(-3)].join(" → ");
}
