import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The daemon's Prometheus registry and its HTTP instruments (one per daemon, no globals). */
export function createMetrics() {
  const registry = new Registry();
  // The event-loop delay monitor samples on a timer: once a second keeps an idle daemon idle.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  const requests = new Counter({
    name: 'observd_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'observd_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  return { registry, requests, duration };
}
export type Metrics = ReturnType<typeof createMetrics>;
