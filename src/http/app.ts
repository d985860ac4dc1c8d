/**
 * The HTTP API factory: builds a configured fastify instance from injected dependencies, without
 * listening (the composition root listens; tests use `app.inject()` or listen on port 0).
 */
import type { Socket } from 'node:net';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import { docsServed, metricsOnApiPort } from '../config/mode.js';
import type { Config } from '../config/schema.js';
import type { AuthThrottle } from '../intake/auth-throttle.js';
import type { CredentialRegistry } from '../intake/credentials.js';
import type { IntakeService } from '../intake/intake-service.js';
import type { Admission } from '../lib/admission.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { MessageStore } from '../store/message-store.js';
import type { SuppressionStore } from '../store/suppression-store.js';
import type { WebhookStore } from '../store/webhook-store.js';
import type { WebhookTargetOf } from '../webhooks/events.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { createConnectionCap } from '../lib/connection-cap.js';
import type { CredentialAdmin } from '../admin/credentials.js';
import type { AuditStore } from '../store/audit-store.js';
import { auditRoutes } from './audit-routes.js';
import { adminScope, decorateAuth, metricsScope, publicScope, readScope, sendScope, supportScope } from './auth.js';
import { consoleRoutes } from './console/console-routes.js';
import type { ConsoleSessionStore } from '../store/console-session-store.js';
import { credentialsRoutes } from './credentials-routes.js';
import { messageSearchRoutes } from './message-search-routes.js';
import { frameworkErrors, registerErrorHandling } from './errors.js';
import { espRoutes, type EspRoutesOptions } from './esp-routes.js';
import { healthRoutes, metricsRoutes, type ReadinessReport } from './health-routes.js';
import { messageReadRoutes, messagesRoutes } from './messages-routes.js';
import { domainsRoutes } from './domains-routes.js';
import { doctorRoutes } from './doctor-routes.js';
import type { Doctor } from '../domains/doctor/doctor.js';
import type { DomainService } from '../domains/domain-service.js';
import { confirmationRoutes, placementRoutes, type PlacementRoutesOptions } from './placement-routes.js';
import { incidentRoutes, type IncidentRoutesOptions } from './incidents-routes.js';
import { reportsRoutes, type ReportsRoutesOptions } from './reports-routes.js';
import { shapingRoutes } from './shaping-routes.js';
import type { DeliveryControlDeps } from '../admin/delivery-control.js';
import { suppressionSupportRoutes, suppressionsRoutes } from './suppressions-routes.js';
import { webhooksRoutes } from './webhooks-routes.js';
import { continueWhenBodyRead } from './unread-body.js';
import { parseJsonBody, refuseJsonHeaders } from './json-body.js';
import { documentUnsupportedMedia, swaggerOptions } from './openapi-document.js';

/** Everything the HTTP API needs, built once by the composition root. */
export interface HttpDeps {
  config: Config;
  logger: Logger;
  intake: IntakeService;
  credentials: CredentialRegistry;
  messages: MessageStore;
  metrics: Metrics;
  /** Redis reachable; worker running (null when this process runs no worker). */
  readiness: () => Promise<ReadinessReport>;
  /** Suppression admin API (`/v1/suppressions`), when given. */
  suppressions?: SuppressionStore;
  /** Webhook state and delivery log (`/v1/webhooks`), when given. */
  webhooks?: WebhookStore;
  clock?: Clock;
  /** Delivery control for admin keys (`/v1/shaping`, `/v1/queue`, retry and cancel), when given. */
  delivery?: DeliveryControlDeps;
  /** Intake admission (bytes in flight, shared with SMTP), when given. */
  admission?: Admission;
  /** ESP notification endpoints (`/v1/feedback/ses`, `/v1/feedback/mailgun`; signature-verified, no key), when given. */
  esp?: EspRoutesOptions;
  /** Throttling of unknown API keys per client IP; without it wrong keys are only answered 401. */
  authThrottle?: AuthThrottle;
  /** Runtime-managed sender domains (`/v1/domains`), when given. */
  domains?: DomainService;
  /** Who has a webhook, runtime keys included (default: the configured keys only). */
  webhookTargetOf?: WebhookTargetOf;
  /** Runtime credentials (`/v1/credentials`), when given. */
  credentialAdmin?: CredentialAdmin;
  /** The audit log: admin and support actions are appended to it, `GET /v1/audit` reads it; without it nothing is audited. */
  audit?: AuditStore;
  /** The deliverability doctor (`/v1/domains/:domain/doctor`), when given. */
  doctor?: Doctor;
  /** Placement results, on-demand probes and confirmations (`/v1/placement`, `/v1/messages/:id/confirm`), when given. */
  placement?: Omit<PlacementRoutesOptions, 'config' | 'clock'>;
  /** DMARC aggregate and TLS reports (`POST /v1/reports`, `GET /v1/domains/:domain/reports`), when given. */
  reports?: Omit<ReportsRoutesOptions, 'clock'>;
  /** The per-provider incident view (`/v1/incidents`), when given. */
  incidents?: Omit<IncidentRoutesOptions, 'clock'>;
  /** The web console (`/console`, docs/console.md): its session store and the provider of an address; served when given and `console.enabled`. */
  console?: { sessions: ConsoleSessionStore; providerOf?: (address: string) => string };
}

/** How often Node checks open connections against the headers and request timeouts (its default is 30 s). */
const TIMEOUT_CHECK_MS = 1000;

/**
 * Caps the app's open sockets (total and per client IP): a socket over a cap is destroyed on arrival.
 * Behind a proxy (`trustProxy`) every socket comes from the proxy, so the per-IP cap is not applied.
 */
function capConnections(app: FastifyInstance, deps: HttpDeps): void {
  const { http } = deps.config;
  const cap = createConnectionCap({
    maxTotal: http.maxConnections,
    maxPerClient: http.trustProxy ? null : http.maxConnectionsPerIp,
    onChange: (open) => deps.metrics.connectionsOpen.set({ interface: 'http' }, open),
  });
  app.server.on('connection', (socket: Socket) => {
    const over = cap.admit(socket);
    if (!over) return;
    deps.metrics.connectionsRefused.inc({ interface: 'http', scope: over });
    // Per socket at debug only: a flood would flood the log; kurir_connections_refused_total counts them.
    deps.logger.debug({ component: 'http', remote: socket.remoteAddress, scope: over, open: cap.open }, 'http: connection refused (connection cap)');
    socket.destroy();
  });
}

/**
 * Builds the fastify app: error mapping, OpenAPI document (`/docs/json`) and UI (`/docs`) when the mode
 * serves them, health and metrics routes, and the message routes. Resolves once every plugin is
 * registered; does not listen.
 */
export async function buildApp(deps: HttpDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const maxBodyBytes = config.http.maxMessageBytes;
  // The rest of a refused body is read for at most as long as a whole request may take.
  const lingerMs = config.http.requestTimeoutSeconds * 1000;
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: maxBodyBytes,
    // The router's default cap (100 characters per path parameter) answered 414 for a longer e-mail address in
    // /v1/suppressions/{address}: a suppressed address could not be looked up or removed. Parameters are checked
    // percent-encoded, so this leaves room for the schemas' 998 characters of an address.
    routerOptions: { maxParamLength: 3 * 998 },
    trustProxy: config.http.trustProxy,
    // Slow clients: whole request (body included), headers, idle socket, idle keep-alive.
    requestTimeout: config.http.requestTimeoutSeconds * 1000,
    connectionTimeout: config.http.idleTimeoutSeconds * 1000,
    keepAliveTimeout: config.http.keepAliveTimeoutSeconds * 1000,
    http: {
      headersTimeout: config.http.headersTimeoutSeconds * 1000,
      requestTimeout: config.http.requestTimeoutSeconds * 1000,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    },
    return503OnClosing: true,
    // Router errors (bad percent-encoding, a parameter over maxParamLength) in the API's one error shape.
    frameworkErrors: frameworkErrors({ maxBodyBytes, lingerMs }),
    // Strict validation: no type coercion ("5" is not a number) and unknown properties are refused,
    // not silently stripped (fastify's defaults would do both).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    // pino's Logger is a FastifyBaseLogger; the cast only drops the narrower logger type parameter.
  }) as unknown as FastifyInstance;
  capConnections(app, deps);
  continueWhenBodyRead(app.server);
  const clock = deps.clock ?? systemClock;
  decorateAuth(
    app,
    deps.authThrottle ?? null,
    deps.audit ? { store: deps.audit, now: () => clock.now(), failed: (kind) => deps.metrics.auditWriteFailures.inc({ kind }) } : null,
  );

  // Every JSON body of the API, before any scope copies the parsers: UTF-8 only, no content coding, no poisoning keys.
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: maxBodyBytes }, parseJsonBody);
  // Its charset and content coding are checked from the headers, before the body is read (no 100 Continue for a 415).
  app.addHook('preParsing', refuseJsonHeaders);
  // fastify's text/plain parser handed a JSON route a string, answered 400 "body: must be object"; without it such a
  // body is 415 naming what the route reads (errors.ts). The ESP endpoints add their own (SNS posts text/plain).
  app.removeContentTypeParser('text/plain');

  registerErrorHandling(app, {
    maxBodyBytes,
    lingerMs,
    onRefusal: (err, request) => {
      if (request.method === 'POST' && request.url.startsWith('/v1/messages')) deps.intake.countRefusal('http', err);
    },
  });

  // Before swagger's own onRoute hook, so the document shows what this adds.
  app.addHook('onRoute', documentUnsupportedMedia);
  await app.register(swagger, swaggerOptions());
  // In production the UI and document are served only with `http.docs: true` (src/config/mode.ts).
  if (docsServed(config)) await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });

  // Every route is registered in exactly one access scope, whose one onRequest hook authenticates and
  // authorizes it (src/http/auth.ts); tests/integration/http-access.test.ts holds the expected table.
  const { credentials } = deps;
  await app.register(publicScope, {
    routes: async (scoped) => {
      await scoped.register(healthRoutes, { readiness: deps.readiness });
      if (deps.esp) await scoped.register(espRoutes, deps.esp);
    },
  });
  if (metricsOnApiPort(config)) {
    await app.register(metricsScope, {
      token: config.metrics.token,
      routes: async (scoped) => {
        await scoped.register(metricsRoutes, { metrics: deps.metrics });
      },
    });
  }
  await app.register(sendScope, {
    credentials,
    routes: async (scoped) => {
      const confirmToken = deps.placement ? (id: string) => deps.placement!.confirmations.token(id) : undefined;
      await scoped.register(messagesRoutes, { config, intake: deps.intake, messages: deps.messages, admission: deps.admission, confirmToken });
      if (deps.placement) await scoped.register(confirmationRoutes, { confirmations: deps.placement.confirmations });
      if (deps.webhooks) await scoped.register(webhooksRoutes, { config, store: deps.webhooks, targetOf: deps.webhookTargetOf });
    },
  });
  await app.register(readScope, {
    credentials,
    routes: async (scoped) => {
      await scoped.register(messageReadRoutes, { messages: deps.messages });
    },
  });
  await app.register(supportScope, {
    credentials,
    routes: async (scoped) => {
      await scoped.register(messageSearchRoutes, { messages: deps.messages, resendHint: (address) => deps.intake.resendHint(address) });
      if (deps.suppressions) await scoped.register(suppressionSupportRoutes, { suppressions: deps.suppressions });
    },
  });
  await app.register(adminScope, {
    credentials,
    routes: async (scoped) => {
      if (deps.suppressions) await scoped.register(suppressionsRoutes, { suppressions: deps.suppressions, clock });
      if (deps.delivery) await scoped.register(shapingRoutes, deps.delivery);
      if (deps.domains) await scoped.register(domainsRoutes, { config, domains: deps.domains });
      if (deps.doctor) await scoped.register(doctorRoutes, { doctor: deps.doctor });
      if (deps.reports) await scoped.register(reportsRoutes, { ...deps.reports, clock });
      if (deps.placement) await scoped.register(placementRoutes, { ...deps.placement, config, clock });
      if (deps.credentialAdmin) await scoped.register(credentialsRoutes, { admin: deps.credentialAdmin });
      if (deps.audit) await scoped.register(auditRoutes, { store: deps.audit });
      if (deps.incidents) await scoped.register(incidentRoutes, { ...deps.incidents, clock });
    },
  });
  // The console has its own session access (src/http/console/session.ts), outside the API key scopes;
  // its routes are hidden from the OpenAPI document and covered by tests/integration/console-access.test.ts.
  if (deps.console && config.console.enabled) {
    await app.register(consoleRoutes, {
      sessions: deps.console.sessions,
      providerOf: deps.console.providerOf,
      credentials,
      credentialAdmin: deps.credentialAdmin,
      messages: deps.messages,
      suppressions: deps.suppressions,
      placement: deps.placement?.store,
      incidents: deps.incidents,
      domains: deps.domains,
      delivery: deps.delivery,
      resendHint: (address) => deps.intake.resendHint(address),
      doctor: deps.doctor,
      configuredDomains: config.domains.map((d) => d.name.toLowerCase()),
      grafanaUrl: config.console.grafanaUrl,
      clock,
    });
  }
  return app;
}
