// Preloaded (`node --import`) into the reference server: a server of this process that names a
// port but no host (express's `app.listen(PORT)`) listens on 127.0.0.1 instead of every
// interface. The suite's servers stay on loopback.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  if ((typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port))) && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
