// The baseline: a node:dgram receiver that only counts datagrams. Prints its port, then its
// count whenever a line arrives on stdin.
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";

let count = 0;
const socket = createSocket("udp4");
socket.on("message", () => {
  count++;
});
socket.bind(0, "127.0.0.1", () => {
  socket.setRecvBufferSize(8 << 20);
  process.stdout.write(`${JSON.stringify({ port: socket.address().port })}\n`);
});
createInterface({ input: process.stdin }).on("line", () =>
  process.stdout.write(`${JSON.stringify({ count })}\n`),
);
