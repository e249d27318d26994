// HTTP heartbeat load: POST /heartbeat {"id"} for `nodes` ids round-robin at `rate` requests
// per second over keep-alive connections, for `seconds`. Prints {"done":N} at the end.
import { Agent, request } from "node:http";

const opts = JSON.parse(process.argv[2]!) as { port: number; nodes: number; rate: number; seconds: number };
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
let started = 0;
let done = 0;
let failed = 0;
let next = 0;
const t0 = performance.now();
const post = (id: string): void => {
  const body = JSON.stringify({ id });
  const req = request(
    {
      host: "127.0.0.1",
      port: opts.port,
      method: "POST",
      path: "/heartbeat",
      agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    },
    (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 204 ? done++ : failed++));
    },
  );
  req.on("error", () => failed++);
  req.end(body);
};
const tick = (): void => {
  const elapsed = (performance.now() - t0) / 1000;
  if (elapsed >= opts.seconds) {
    setTimeout(() => {
      process.stdout.write(`${JSON.stringify({ done, failed })}\n`);
      agent.destroy();
    }, 500);
    return;
  }
  const due = Math.floor(elapsed * opts.rate);
  // Never more than a few hundred requests in flight: past that the server is saturated.
  while (started < due && started - done - failed < 512) {
    post(`n${next}`);
    next = (next + 1) % opts.nodes;
    started++;
  }
  setTimeout(tick, 1);
};
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
tick();
