import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { ValidationError } from "../runtime/config/errors.ts";
import { DNS_LABEL, type PriorityClass, type WorkflowConfig } from "../runtime/config/schema.ts";
import { parseWorkflow, parseWorkflowText } from "../runtime/graph/index.ts";
import type { WorkflowGraph } from "../runtime/graph/model.ts";
import type { Tenant } from "./tenant.ts";

export interface WorkflowOptions {
  /**
   * Name runs use to refer to the workflow (`workflowRef`).
   * @default the native workflow's metadata.name, or the file name without extension
   */
  readonly name?: string;
  /**
   * Priority class of the workflow's runs unless a submission says otherwise.
   * @default the workflow's own priority, else "batch"
   */
  readonly priority?: PriorityClass;
  /**
   * Tenants allowed to run it by name.
   * @default every tenant of the WorkflowDeployment it is bound to
   */
  readonly tenants?: readonly Tenant[];
}

/**
 * A workflow bound into a WorkflowDeployment: a native gpufabric Workflow or a ComfyUI API-format prompt.
 * Parsed and validated when declared, so a broken workflow fails the synth, not the first run.
 */
export class Workflow {
  /** Loads a workflow file (native YAML/JSON or a ComfyUI API-format JSON prompt). */
  static fromFile(path: string, options: WorkflowOptions = {}): Workflow {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new ValidationError(`workflow file '${path}'`, [
        { field: "path", message: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): check the path, relative to the directory you run synth from` },
      ]);
    }
    const graph = parseWorkflowText(text, path);
    const fallbackName = basename(path, extname(path));
    return new Workflow(graph, documentOf(text), options, fallbackName);
  }

  /** A native workflow document (`apiVersion: gpufabric.dev/v1`, `kind: Workflow`). */
  static native(document: Record<string, unknown>, options: WorkflowOptions = {}): Workflow {
    return new Workflow(parseWorkflow(document, { format: "native", name: options.name }), document, options, undefined);
  }

  /** A ComfyUI API-format prompt (node ids mapped to `{ class_type, inputs }`). */
  static comfyui(name: string, prompt: Record<string, unknown>, options: Omit<WorkflowOptions, "name"> = {}): Workflow {
    return new Workflow(parseWorkflow(prompt, { format: "comfyui", name }), prompt, { ...options, name }, name);
  }

  readonly name: string;
  readonly graph: WorkflowGraph;
  readonly priority: PriorityClass;
  readonly tenants?: readonly Tenant[];
  private readonly document: Record<string, unknown>;

  private constructor(graph: WorkflowGraph, document: Record<string, unknown>, options: WorkflowOptions, fallbackName: string | undefined) {
    const name = options.name ?? (graph.format === "native" ? graph.name : fallbackName ?? graph.name);
    if (!DNS_LABEL.test(name)) {
      throw new ValidationError(`workflow '${name}'`, [
        { field: "name", message: "must be a DNS-1123 label (lowercase letters, digits, '-'): pass options.name, e.g. { name: 'txt2img' }" },
      ]);
    }
    this.name = name;
    this.graph = graph;
    this.document = document;
    this.priority = options.priority ?? graph.priority ?? "batch";
    this.tenants = options.tenants;
  }

  /** The workflow's entry in the platform config. */
  toConfig(defaultTenants: readonly Tenant[]): WorkflowConfig {
    return {
      name: this.name,
      format: this.graph.format,
      priority: this.priority,
      tenants: (this.tenants ?? defaultTenants).map((t) => t.name),
      document: this.document,
    };
  }
}

function documentOf(text: string): Record<string, unknown> {
  // parseWorkflowText has already validated the text (size and alias caps included); this recovers
  // the plain document to embed in the platform config. JSON is a subset of YAML 1.2.
  return parseYaml(text) as Record<string, unknown>;
}
