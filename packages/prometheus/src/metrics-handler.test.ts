import { createServer } from 'node:http';
import express from 'express';
import { Registry } from 'prom-client';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createMetricsHandler, createPrometheusMeterProvider, registerProcessMetrics } from './index';

describe('createMetricsHandler', () => {
  function registryWithOneCounter() {
    const registry = new Registry();
    createPrometheusMeterProvider({ registry }).getMeter('t').createCounter('served', { description: 'Served.' }).add(2);
    return registry;
  }

  it('answers GET with the registry in the Prometheus text format, as an Express handler', async () => {
    const registry = registryWithOneCounter();
    const res = await request(express().get('/metrics', createMetricsHandler({ registry }))).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(registry.contentType);
    expect(res.text).toContain('served_total 2');
  });

  it('works on a plain node:http server: HEAD without a body, other methods 405', async () => {
    const server = createServer(createMetricsHandler({ registry: registryWithOneCounter() }));
    const head = await request(server).head('/metrics');
    expect(head.status).toBe(200);
    expect(head.text ?? '').toBe('');
    const post = await request(server).post('/metrics');
    expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD']);
  });

  it('answers 500 without the error text when collecting fails', async () => {
    const registry = new Registry();
    registry.metrics = () => Promise.reject(new Error('secret detail'));
    const res = await request(createServer(createMetricsHandler({ registry }))).get('/metrics');
    expect(res.status).toBe(500);
    expect(res.text).not.toContain('secret');
  });

  it('rejects a missing registry at construction', () => {
    expect(() => createMetricsHandler({} as never)).toThrow(/createMetricsHandler: registry must be a prom-client Registry/);
  });
});

describe('registerProcessMetrics', () => {
  it('adds the process metrics once, without the *_total gauges promtool rejects', async () => {
    const registry = new Registry();
    registerProcessMetrics(registry);
    registerProcessMetrics(registry);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_active_handles gauge');
    expect(text).not.toMatch(/nodejs_active_(handles|requests|resources)_total/);
  });
});
