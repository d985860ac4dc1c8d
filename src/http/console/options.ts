import type { CredentialAdmin } from '../../admin/credentials.js';
import type { DeliveryControlDeps } from '../../admin/delivery-control.js';
import type { IncidentViewDeps } from '../../admin/incidents.js';
import type { DomainService } from '../../domains/domain-service.js';
import type { Doctor } from '../../domains/doctor/doctor.js';
import type { CredentialRegistry } from '../../intake/credentials.js';
import type { ResendHint } from '../../intake/resend-hint.js';
import type { Clock } from '../../lib/clock.js';
import type { ConsoleSessionStore } from '../../store/console-session-store.js';
import type { MessageStore } from '../../store/message-store.js';
import type { PlacementStore } from '../../store/placement-store.js';
import type { SuppressionStore } from '../../store/suppression-store.js';

/** Everything the console reads and changes; optional parts hide their screens when absent. */
export interface ConsoleOptions {
  sessions: ConsoleSessionStore;
  credentials: CredentialRegistry;
  credentialAdmin?: CredentialAdmin;
  messages: MessageStore;
  suppressions?: SuppressionStore;
  /** The provider (shaping/placement name) of a recipient address. */
  providerOf?: (address: string) => string;
  placement?: PlacementStore;
  incidents?: IncidentViewDeps;
  domains?: DomainService;
  delivery?: DeliveryControlDeps;
  /** The resend outlook of an address (IntakeService.resendHint), shown with a search; hidden when absent. */
  resendHint?: (address: string) => Promise<ResendHint>;
  /** The deliverability doctor of the API (`GET /v1/domains/:domain/doctor`), for the domain pages. */
  doctor?: Doctor;
  /** Sender domains declared in the configuration (the doctor checks them too). */
  configuredDomains?: string[];
  /** `console.grafanaUrl`: base URL of Grafana with dashboards/grafana/ (null or absent: no links). */
  grafanaUrl?: string | null;
  clock: Clock;
}
