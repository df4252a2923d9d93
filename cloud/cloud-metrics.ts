/**
 * The cloud's Prometheus metrics (`GET /metrics`, admin token): counters and sums kept in memory
 * per process, labels from small fixed sets only (a refusal code, a call kind) — never a terminal.
 * Prometheus's own `instance` label tells the gateways apart.
 */
export class CloudMetrics {
  /** name → (label `key="value"` or '') → value. */
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly gauges = new Map<string, () => number | Promise<number>>();
  private readonly help = new Map<string, string>();

  describe(name: string, help: string): void {
    this.help.set(name, help);
  }

  /** Adds `by` to a counter, under one label (`key`, `value`) or none. */
  count(name: string, label?: [string, string], by = 1): void {
    const key = label ? `${label[0]}="${label[1].replace(/[^\w.-]/g, '_')}"` : '';
    const m = this.counters.get(name) ?? new Map<string, number>();
    m.set(key, (m.get(key) ?? 0) + by);
    this.counters.set(name, m);
  }

  /** A duration, as a summary without quantiles: `name_sum` and `name_count` (seconds). */
  observe(name: string, label: [string, string] | undefined, seconds: number): void {
    this.count(`${name}_sum`, label, seconds);
    this.count(`${name}_count`, label);
  }

  gauge(name: string, help: string, read: () => number | Promise<number>): void {
    this.gauges.set(name, read);
    this.help.set(name, help);
  }

  /** The text exposition format (0.0.4). */
  async render(): Promise<string> {
    const lines: string[] = [];
    for (const [name, read] of this.gauges)
      lines.push(`# HELP ${name} ${this.help.get(name)}`, `# TYPE ${name} gauge`, `${name} ${await read()}`);
    const said = new Set<string>();
    for (const [name, values] of [...this.counters].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const summary = /_(sum|count)$/.test(name) && this.help.has(name.replace(/_(sum|count)$/, ''));
      const base = summary ? name.replace(/_(sum|count)$/, '') : name;
      if (!said.has(base)) {
        said.add(base);
        lines.push(
          `# HELP ${base} ${this.help.get(base) ?? base}`,
          `# TYPE ${base} ${summary ? 'summary' : 'counter'}`,
        );
      }
      for (const [label, v] of values)
        lines.push(`${name}${label ? `{${label}}` : ''} ${Number(v.toFixed(6))}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
