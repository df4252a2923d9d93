import { describe, expect, it } from 'vitest';
import { CloudMetrics } from '../../cloud/cloud-metrics.js';

describe('the cloud metrics (cloud/cloud-metrics.ts)', () => {
  it('gauges, counters by a label from a fixed set, and durations as summaries, in the text format', async () => {
    const m = new CloudMetrics();
    let open = 3;
    m.gauge('posagent_connected_terminals', 'terminals whose link is open on this gateway', () => open);
    m.count('posagent_link_refusals_total', ['reason', 'certificate_expired']);
    m.count('posagent_link_refusals_total', ['reason', 'certificate_expired']);
    m.count('posagent_link_refusals_total', ['reason', 'bad"code\n']);
    m.describe('posagent_routed_request_seconds', 'routed requests');
    m.observe('posagent_routed_request_seconds', ['kind', 'ping'], 0.25);
    m.observe('posagent_routed_request_seconds', ['kind', 'ping'], 0.5);
    open = 4;
    const text = await m.render();
    expect(text).toContain('# TYPE posagent_connected_terminals gauge\nposagent_connected_terminals 4\n');
    expect(text).toContain('# TYPE posagent_link_refusals_total counter');
    expect(text).toContain('posagent_link_refusals_total{reason="certificate_expired"} 2');
    // A label value never breaks the format.
    expect(text).toContain('posagent_link_refusals_total{reason="bad_code_"} 1');
    expect(text).toContain('# TYPE posagent_routed_request_seconds summary');
    expect(text).toContain('posagent_routed_request_seconds_sum{kind="ping"} 0.75');
    expect(text).toContain('posagent_routed_request_seconds_count{kind="ping"} 2');
    expect(text.match(/# TYPE posagent_routed_request_seconds /g)).toHaveLength(1);
  });
});
