import type { Pack } from "./pack.ts";

export const hipaa: Pack = {
  id: "hipaa",
  title: "HIPAA Security Rule, technical safeguards (45 CFR 164.312)",
  description: "Technical safeguards for electronic protected health information (ePHI).",
  controls: {
    "164.312(a)(1)": "Access control",
    "164.312(a)(2)(i)": "Unique user identification",
    "164.312(a)(2)(iv)": "Encryption and decryption",
    "164.312(b)": "Audit controls",
    "164.312(c)": "Integrity",
    "164.312(d)": "Person or entity authentication",
    "164.312(e)": "Transmission security",
  },
};
