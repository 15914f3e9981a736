import {
  type SpanKind,
  SpanStatusCode,
  type Attributes,
  type AttributeValue,
  type Exception,
  type HrTime,
  type Link,
  type Span,
  type SpanContext,
  type SpanStatus,
  type TimeInput,
} from '@opentelemetry/api';
import type { FinishedSpan, SpanRecorder } from '../tracing';

/** Milliseconds since the epoch → OpenTelemetry's [seconds, nanoseconds]. */
export function toHrTime(epochMs: number): HrTime {
  const seconds = Math.floor(epochMs / 1000);
  return [seconds, Math.round((epochMs - seconds * 1000) * 1e6)];
}

export function hrTimeToMs(time: HrTime): number {
  return time[0] * 1000 + time[1] / 1e6;
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The span the helpers make when no OpenTelemetry SDK is registered (the API's tracer then hands
 * out non-recording spans with all-zero ids). It carries real random ids, keeps what the store
 * needs and hands itself to a recorder when it ends. Events and links are dropped.
 */
export class FallbackSpan implements Span, FinishedSpan {
  readonly attributes: Attributes = {};
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  readonly startTime: HrTime;
  duration: HrTime = [0, 0];
  #startMs: number;
  #ended = false;

  constructor(
    public name: string,
    readonly kind: SpanKind,
    readonly context: SpanContext,
    readonly recorder: SpanRecorder | undefined,
    attributes: Attributes | undefined,
  ) {
    this.#startMs = nowMs();
    this.startTime = toHrTime(this.#startMs);
    if (attributes) this.setAttributes(attributes);
  }

  spanContext(): SpanContext {
    return this.context;
  }
  setAttribute(key: string, value: AttributeValue): this {
    if (!this.#ended && value !== undefined) this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    for (const key in attributes) {
      const value = attributes[key];
      if (value !== undefined && Object.hasOwn(attributes, key)) this.setAttribute(key, value);
    }
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(_link: Link): this {
    return this;
  }
  addLinks(_links: Link[]): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    if (!this.#ended) this.status = status;
    return this;
  }
  updateName(name: string): this {
    if (!this.#ended) this.name = name;
    return this;
  }
  end(_endTime?: TimeInput): void {
    if (this.#ended) return;
    this.#ended = true;
    this.duration = toHrTime(Math.max(0, nowMs() - this.#startMs));
    this.recorder?.onEnd(this);
  }
  isRecording(): boolean {
    return !this.#ended;
  }
  recordException(exception: Exception): void {
    if (typeof exception === 'object' && exception !== null) {
      this.setAttribute('exception.type', exception.name ?? 'Error');
      if (exception.message) this.setAttribute('exception.message', exception.message);
    } else {
      this.setAttribute('exception.message', String(exception));
    }
  }
}
