/** Names and labels of the objects one agent owns, shared by every part so that selectors always match. */
import type { IConstruct } from "constructs";
import { FabricStack } from "../fabric-stack.ts";

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

/** Which workload of an agent a metadata describes: the agent itself (the control plane in cluster mode) or its workers. */
export interface AgentRole {
  /** `app.kubernetes.io/name` of every object of this role. */
  readonly app: string;
  /** `app.kubernetes.io/component` of the role's pods. */
  readonly component: string;
}

/** The agent's role: policies recognize the agent's workload by `app.kubernetes.io/name: gpufabric-agent`. */
export const AGENT_ROLE: AgentRole = { app: "gpufabric-agent", component: "agent" };

export class AgentMetadata {
  /** What the Service, the PodDisruptionBudget and the NetworkPolicies select the agent's pods by. */
  readonly selector: Readonly<Record<string, string>>;
  /** The agent workload's labels and its pods': the stack's labels plus the selector. */
  readonly podLabels: Readonly<Record<string, string>>;
  private readonly stack: FabricStack;

  constructor(
    scope: IConstruct,
    /** The agent's name, the instance label of everything it owns. */
    readonly name: string,
    readonly namespace: string,
    /** @default AGENT_ROLE */
    readonly role: AgentRole = AGENT_ROLE,
  ) {
    this.stack = FabricStack.of(scope);
    this.selector = {
      "app.kubernetes.io/name": role.app,
      "app.kubernetes.io/instance": name,
      "app.kubernetes.io/component": role.component,
    };
    this.podLabels = { ...this.stack.labelsFor(role.component, name), ...this.selector };
  }

  /** Metadata of an object of the agent's named `name`; `component` says what part of the agent it is. */
  of(name: string, component = this.role.component): ObjectMeta {
    return { name, namespace: this.namespace, labels: this.labelsFor(component) };
  }

  /** The stack's labels for a `component` of this agent, under the role's app name. */
  labelsFor(component: string): Record<string, string> {
    return { ...this.stack.labelsFor(component, this.name), "app.kubernetes.io/name": this.role.app };
  }

  /** Labels of an object that belongs to the agent but lives elsewhere (another segment's egress policy). */
  foreignLabels(component: string): Record<string, string> {
    return this.stack.labelsFor(component, this.name);
  }
}
