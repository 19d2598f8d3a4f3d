import Foundation

/// Opens and closes many client connections quickly, for the tests that watch the gateway's
/// memory across connections. A Python process (a debug-built Swift client would be the slow
/// side): one selector, `window` connections in flight, each one sends its request (or
/// nothing), reads the whole response, then half-closes and waits for the gateway to close too,
/// so every connection counted has been accepted, handled and closed by the gateway.
///
/// Requests are taken in turn from `requests`; an empty one sends no byte. Source addresses
/// rotate over 127.0.0.1-127.0.0.8 so that the client's TIME_WAIT sockets never run out of
/// ports, whatever `net.ipv4.tcp_tw_reuse` says.
struct ConnectionChurn {
    struct Result {
        var connections = 0
        /// Responses by status code.
        var statuses: [Int: Int] = [:]
        /// Connections that failed (connect error, reset, timeout); the first reasons.
        var errors = 0
        var firstErrors: [String] = []
        var seconds = 0.0
    }

    let port: Int
    var requests: [String] = [""]
    var window = 32

    /// Runs `count` connections and returns what they saw; throws when the client itself fails.
    func run(_ count: Int, timeout: Double = 120) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let specification = try JSONSerialization.data(withJSONObject: [
            "port": self.port, "count": count, "window": self.window, "requests": self.requests, "timeout": timeout,
        ])
        process.arguments = ["python3", "-c", Self.script, String(decoding: specification, as: UTF8.self)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw GatewayTestError("the churn client failed (status \(process.terminationStatus)): \(String(decoding: data, as: UTF8.self))")
        }
        var result = Result()
        result.connections = json["connections"] as? Int ?? 0
        result.errors = json["errors"] as? Int ?? 0
        result.firstErrors = json["first_errors"] as? [String] ?? []
        result.seconds = json["seconds"] as? Double ?? 0
        for (status, n) in json["statuses"] as? [String: Int] ?? [:] {
            if let status = Int(status) { result.statuses[status] = n }
        }
        return result
    }

    private static let script = #"""
        import errno, json, selectors, socket, sys, time
        spec = json.loads(sys.argv[1])
        port, count, window = spec["port"], spec["count"], spec["window"]
        requests = [r.encode("latin-1") for r in spec["requests"]]
        deadline = time.monotonic() + spec["timeout"]
        IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
        sel = selectors.DefaultSelector()
        started = done = errors = 0
        first_errors, statuses = [], {}
        t0 = time.monotonic()

        def fail(s, why):
            global errors
            errors += 1
            if len(first_errors) < 5:
                first_errors.append(why)
            finish(s)

        def finish(s):
            global done
            sel.unregister(s)
            s.close()
            done += 1

        def start(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind(("127.0.0.%d" % (1 + n % 8), 0))
            except OSError:
                pass
            rc = s.connect_ex(("127.0.0.1", port))
            # state: [phase, request, received]
            state = ["connect", requests[n % len(requests)], b""]
            sel.register(s, selectors.EVENT_WRITE, state)
            if rc not in (0, errno.EINPROGRESS):
                fail(s, "connect: " + errno.errorcode.get(rc, str(rc)))

        def half_close(s, state):
            state[0] = "closing"
            s.shutdown(socket.SHUT_WR)
            sel.modify(s, selectors.EVENT_READ, state)

        def response_complete(data):
            head, sep, body = data.partition(b"\r\n\r\n")
            if not sep:
                return None
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(body) < length:
                return None
            return int(head.split(b" ", 2)[1])

        while done < count:
            while started < count and started - done < window:
                start(started)
                started += 1
            if time.monotonic() > deadline:
                for key in list(sel.get_map().values()):
                    fail(key.fileobj, "timeout in phase " + key.data[0])
                break
            for key, _ in sel.select(timeout=1):
                s, state = key.fileobj, key.data
                try:
                    if state[0] == "connect":
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            fail(s, "connect: " + errno.errorcode.get(err, str(err)))
                        elif state[1]:
                            s.sendall(state[1])
                            state[0] = "response"
                            sel.modify(s, selectors.EVENT_READ, state)
                        else:
                            half_close(s, state)
                    elif state[0] == "response":
                        chunk = s.recv(65536)
                        if not chunk:
                            status = response_complete(state[2])
                            if status is None:
                                fail(s, "closed before the whole response")
                                continue
                        state[2] += chunk
                        status = response_complete(state[2])
                        if status is not None:
                            statuses[status] = statuses.get(status, 0) + 1
                            if not chunk:
                                finish(s)
                            else:
                                half_close(s, state)
                    else:
                        if not s.recv(65536):
                            finish(s)
                except OSError as e:
                    fail(s, "%s in phase %s" % (errno.errorcode.get(e.errno, str(e)), state[0]))
        print(json.dumps({"connections": done, "statuses": statuses, "errors": errors,
                          "first_errors": first_errors, "seconds": time.monotonic() - t0}))
        """#
}
