import type { Priority } from '../config/schema.js';

export type RecipientStatus = 'queued' | 'deferred' | 'delivered' | 'bounced' | 'expired';
export type MessageStatus = 'queued' | 'deferred' | 'delivered' | 'bounced' | 'expired' | 'partially-delivered';

export const FINAL_RECIPIENT_STATUSES: ReadonlySet<RecipientStatus> = new Set(['delivered', 'bounced', 'expired']);

/** What the store keeps of a message, apart from its body. */
export interface MessageRecord {
  id: string;
  /** Name of the API key or SMTP account that submitted it. */
  owner: string;
  interface: 'smtp' | 'http';
  mailFrom: string;
  fromDomain: string;
  recipients: string[];
  priority: Priority;
  createdAt: number;
  expiresAt: number;
  size: number;
  messageId: string;
  subject?: string;
  dkim: Array<{ domain: string; selector: string; algorithm: string }>;
  tags?: string[];
  metadata?: Record<string, string>;
}

export interface RecipientState {
  status: RecipientStatus;
  attempts: number;
  updatedAt: number;
  reply?: string;
  nextAttemptAt?: number;
  remoteHost?: string;
}

export type TimelineEvent =
  | { type: 'queued'; at: number }
  | { type: 'attempt'; at: number; recipients: string[]; host: string; reply: string; tls?: boolean }
  | { type: 'deferred'; at: number; recipients: string[]; reply: string; nextAttemptAt: number }
  | { type: 'delivered'; at: number; recipients: string[]; host: string; reply: string }
  | { type: 'bounced'; at: number; recipients: string[]; reply: string; host?: string }
  | { type: 'expired'; at: number; recipients: string[]; reply?: string };

export interface MessageView {
  record: MessageRecord;
  status: MessageStatus;
  recipients: Record<string, RecipientState>;
  events: TimelineEvent[];
}
