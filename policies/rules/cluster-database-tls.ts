import { configPath } from "../context.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { checkConfigs, controls } from "./support.ts";

export const clusterDatabaseTls: Rule = {
  id: "GF-CLU-001",
  name: "cluster-database-tls",
  level: "error",
  title: "Cluster control planes verify their database's certificate and host name",
  rationale:
    "In cluster mode every run, its inputs' references, tenants' quotas and the audit trail pass between the control planes and PostgreSQL. Without TLS they cross the network in clear text; with TLS but no verification (sslmode require or verify-ca), anyone who can answer for the database's address, or holds any certificate of its CA, can read and alter them.",
  remediation:
    "Set the WorkflowDeployment's `cluster.database.sslMode` to \"verify-full\" (the default) and give the database a certificate for the host name in its URL, or in plain Terraform set the platform config's `cluster.databaseSslMode` to `verify-full`.",
  controls: [controls.hipaa("164.312(e)"), controls.soc2("CC6.7")],
  kinds: ["config_map"],
  check(resource, context) {
    return checkConfigs(resource, context, (config, source) => {
      // Only cluster mode has a database on the network: a single agent keeps its store on its own volume.
      if (config.cluster === null) return notApplicable;
      const mode = config.cluster.databaseSslMode;
      return mode === "verify-full"
        ? compliant
        : violation(configPath(source, "cluster.databaseSslMode"), `the control planes connect to PostgreSQL with sslmode '${mode}', which does not verify the server's certificate and host name`);
    });
  },
};
