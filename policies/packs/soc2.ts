import type { Pack } from "./pack.ts";

export const soc2: Pack = {
  id: "soc2",
  title: "SOC 2 Trust Services Criteria (security)",
  description: "Logical access, boundary protection, data in transit and monitoring criteria of the common criteria.",
  controls: {
    "CC6.1": "Logical access security software, infrastructure and architecture",
    "CC6.3": "Role-based access and least privilege",
    "CC6.6": "Boundary protection against threats from outside the system",
    "CC6.7": "Restriction of transmission, movement and removal of information",
    "CC7.2": "Monitoring of system components for anomalies",
    "CC9.1": "Risk mitigation for business disruptions",
  },
};
