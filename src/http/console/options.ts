import type { CredentialAdmin } from '../../admin/credentials.js';
import type { DeliveryControlDeps } from '../../admin/delivery-control.js';
import type { IncidentViewDeps } from '../../admin/incidents.js';
import type { DomainService } from '../../domains/domain-service.js';
import type { CredentialRegistry } from '../../intake/credentials.js';
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
  clock: Clock;
}
