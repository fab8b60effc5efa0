import FastCore
import Foundation
import XCTest

/// Broker URLs as Celery users write them (issue 21): ACL users, unix sockets, failover lists,
/// each checked with a real redis-server, a real celeris-worker and celeris-frontend (and beat,
/// and the in-process client, under the ACL user).
final class BrokerURLTests: XCTestCase {
    /// Every command Celeris (worker, frontend, beat, client) sends, directly or from its Lua
    /// scripts: an ACL user needs exactly these (`-@all` plus this list, on every key `~*`
    /// and channel `&*`). Found by running the stack below under a user allowed only these, with
    /// `ACL LOG` empty afterwards.
    static let neededCommands = [
        "auth", "ping", "select", "get", "set", "setex", "mget", "del", "exists", "expire", "pexpire", "incr",
        "type", "lpush", "rpush", "rpop", "lrange", "ltrim", "llen", "lmove", "blmove", "rpoplpush", "lmpop",
        "blpop", "sadd", "srem", "smembers", "sismember", "zadd", "zrem", "zrange", "zrangebyscore",
        "zremrangebyscore", "zscore", "zcount", "hset", "hget", "hgetall", "hdel", "hexists", "sort",
        "publish", "subscribe", "unsubscribe", "multi", "exec", "eval", "evalsha", "script|load", "time",
    ]

    // MARK: - parsing

    func testURLForms() throws {
        let acl = try RedisEndpoint(url: "redis://celeris:p%40ss%3Aw%2Frd@10.0.0.5:6380/2")
        XCTAssertEqual(acl.username, "celeris")
        XCTAssertEqual(acl.password, "p@ss:w/rd")
        XCTAssertEqual(acl.host, "10.0.0.5")
        XCTAssertEqual(acl.port, 6380)
        XCTAssertEqual(acl.db, 2)
        XCTAssertEqual(acl.handshake, [["AUTH", "celeris", "p@ss:w/rd"], ["SELECT", "2"]])
        XCTAssertEqual(acl.description, "redis://celeris@10.0.0.5:6380/2", "no password in descriptions")

        let passwordOnly = try RedisEndpoint(url: "redis://:secret@redis.internal")
        XCTAssertNil(passwordOnly.username)
        XCTAssertEqual(passwordOnly.handshake, [["AUTH", "secret"]])
        XCTAssertEqual(passwordOnly.port, 6379)
        XCTAssertEqual(try RedisEndpoint(url: "redis://[::1]:6390/0").host, "::1")
        XCTAssertEqual(try RedisEndpoint(url: "redis://h/0?db=3").db, 3)

        let unix = try RedisEndpoint(url: "unix:///run/redis/redis.sock?db=4")
        XCTAssertEqual(unix.socketPath, "/run/redis/redis.sock")
        XCTAssertEqual(unix.db, 4)
        XCTAssertEqual(unix.description, "unix:///run/redis/redis.sock?db=4")
        let kombu = try RedisEndpoint(url: "redis+socket:///tmp/r.sock?virtual_host=1")
        XCTAssertEqual(kombu.socketPath, "/tmp/r.sock")
        XCTAssertEqual(kombu.db, 1)
        let unixACL = try RedisEndpoint(url: "unix://u:p@/tmp/r.sock")
        XCTAssertEqual(unixACL.handshake, [["AUTH", "u", "p"]])

        let list = try RedisEndpoint(url: "redis://a:6379;redis://u:pw@b:6380")
        XCTAssertEqual(list.servers.map(\.host), ["a", "b"])
        XCTAssertEqual(list.servers[1].handshake, [["AUTH", "u", "pw"]])
        XCTAssertEqual(list.description, "redis://a:6379/0;redis://u@b:6380/0")

        for (url, words) in [
            ("rediss://h:6380/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be required, optional or none"),
            ("redis://h:6379/0?ssl_ca_certs=/ca.pem", "ssl_ca_certs is a TLS option: use rediss://"),
            ("rediss://h/0?ssl_check_hostname=perhaps", "ssl_check_hostname must be true or false"),
            ("rediss://h/0?ssl_version=3", "unknown TLS option ssl_version"),
            ("sentinel://h:26379;redis://h2:6379", "mixes sentinel:// with other schemes"),
            ("sentinel://h:26379?master_name=a;sentinel://h2?master_name=b", "more than one master_name"),
            ("redis://h/0?master_name=m", "unknown option master_name"),
            ("http://x", "unknown scheme"),
            ("redis://h:99999/0", "port must be 1-65535"),
            ("redis://h/x", "db must be a number"),
            ("redis://u:%zz@h", "bad percent-encoding"),
            ("redis://h?timeout=5", "unknown option timeout"),
            ("redis://a/0;redis://b/1", "same db"),
            ("unix://relative.sock", "expected unix:///path"),
            ("redis://::1:6379", "IPv6 address goes in brackets"),
        ] {
            XCTAssertThrowsError(try RedisEndpoint(url: url), url) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(words), "\(url): \(text)")
            }
        }
        XCTAssertThrowsError(try RedisEndpoint(url: "rediss://user:hunter2@h/0?ssl_cert_reqs=no")) { error in
            XCTAssertFalse("\(error)".contains("hunter2"), "a password never reaches a message: \(error)")
            XCTAssertTrue("\(error)".contains("rediss://user:**@h"), "\(error)")
        }
    }

    func testTLSAndSentinelURLForms() throws {
        let tls = try RedisEndpoint(
            url: "rediss://:tok%40en@cache.example.com:6380/1?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=/etc/ca.pem"
                + "&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_check_hostname=false")
        XCTAssertEqual(
            tls.tls,
            RedisTLS(
                certificateRequirement: .required, caFile: "/etc/ca.pem", certFile: "/c.pem", keyFile: "/k.pem",
                checkHostname: false))
        XCTAssertEqual(tls.handshake, [["AUTH", "tok@en"], ["SELECT", "1"]])
        XCTAssertEqual(tls.description, "rediss://cache.example.com:6380/1")
        XCTAssertEqual(try RedisEndpoint(url: "rediss://h").tls, RedisTLS(), "verified against the system store")
        XCTAssertEqual(try RedisEndpoint(url: "rediss://h?ssl_cert_reqs=none").tls?.verifies, false)
        XCTAssertEqual(try RedisEndpoint(url: "rediss://a;rediss://b").servers.map { $0.tls != nil }, [true, true])

        let s = try RedisEndpoint(
            url: "sentinel://:pw@10.0.0.7:26379/2;sentinel://10.0.0.8?master_name=mymaster&sentinel_password=sp")
        XCTAssertEqual(
            s.sentinel,
            RedisSentinel(
                masterName: "mymaster",
                sentinels: [
                    RedisEndpoint(host: "10.0.0.7", port: 26379), RedisEndpoint(host: "10.0.0.8", port: 26379),
                ],
                password: "sp"))
        XCTAssertEqual(s.password, "pw", "the URL's password is the master's, as in kombu")
        XCTAssertEqual(s.db, 2)
        XCTAssertNil(s.tls)
        XCTAssertEqual(s.description, "sentinel://10.0.0.7:26379/2;sentinel://10.0.0.8:26379/2?master_name=mymaster")
        XCTAssertEqual(try RedisEndpoint(url: s.description).sentinel?.sentinels, s.sentinel?.sentinels)
        XCTAssertNotNil(try RedisEndpoint(url: "sentinel://h?master_name=m&ssl=true").tls)
        XCTAssertThrowsError(try RedisEndpoint(url: "sentinel://h:26379")) { error in
            XCTAssertTrue("\(error)".contains("needs the master's name"), "\(error)")
        }
    }

    /// Random URLs (mutations of good ones and random bytes): each parses or throws a reason;
    /// nothing traps, and a parsed URL's description parses back to the same server(s).
    func testMalformedURLsNeverTrap() {
        var rng = SplitMix(seed: 21)
        let seeds = [
            "redis://celeris:p%40ss@127.0.0.1:6379/0", "unix:///tmp/r.sock?db=1", "redis://[::1]:6380/2",
            "redis://a:6379;redis://b:6380", "redis+socket:///x?virtual_host=3", "redis://:pw@h",
        ]
        let alphabet = Array("redis:/@[]%?;=&:#unix+socket0123456789abcdefRS \t\u{0}\u{7F}é/.")
        var parsed = 0
        var refused = 0
        for i in 0..<20_000 {
            var chars = Array(seeds[i % seeds.count])
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = chars.isEmpty ? 0 : Int(rng.next() % UInt64(chars.count + 1))
                switch rng.next() % 3 {
                case 0 where at < chars.count: chars.remove(at: at)
                case 1: chars.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                default: if at < chars.count { chars[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                }
            }
            if i % 10 == 0 {
                chars = (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            }
            let url = String(chars)
            do {
                let ep = try RedisEndpoint(url: url)
                parsed += 1
                let again = try RedisEndpoint(url: ep.description)
                XCTAssertEqual(again.servers.map(\.host), ep.servers.map(\.host), url)
                XCTAssertEqual(again.servers.map(\.port), ep.servers.map(\.port), url)
                XCTAssertEqual(again.servers.map(\.socketPath), ep.servers.map(\.socketPath), url)
                XCTAssertEqual(again.db, ep.db, url)
            } catch {  // typed: RedisEndpoint.InvalidURL
                refused += 1
                XCTAssertFalse(error.reason.isEmpty, url)
            }
        }
        XCTAssertGreaterThan(parsed, 1000)
        XCTAssertGreaterThan(refused, 1000)
    }

    // MARK: - real servers

    /// An ACL user allowed only `neededCommands` runs everything: worker drains, frontend answers
    /// POST /tasks, /status, /ws, /stats and a revoke, beat schedules, the client sends and waits;
    /// Redis logs no refusal. The default user is off, so a dropped user name would fail.
    func testACLUserWithOnlyTheCommandsCelerisNeeds() async throws {
        let redis = try LocalRedis()
        defer { redis.stop() }
        let admin = try redis.client()
        let password = "p@ss:w/rd é"
        let rules = ["on", ">" + password, "~*", "&*", "-@all"] + Self.neededCommands.map { "+" + $0 }
        XCTAssertEqual(try admin.pipeline([["ACL", "SETUSER", "celeris"] + rules])[0].text, "OK")
        XCTAssertEqual(
            try admin.pipeline([["ACL", "SETUSER", "admin", "on", ">adminpw", "~*", "&*", "+@all"]])[0].text, "OK")
        XCTAssertEqual(try admin.pipeline([["ACL", "SETUSER", "default", "off"]])[0].text, "OK")
        let root = try RedisConnection(endpoint: RedisEndpoint(url: "redis://admin:adminpw@127.0.0.1:\(redis.port)/0"))
        try root.command("ACL", "LOG", "RESET")
        try root.command("CONFIG", "RESETSTAT")
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let url = "redis://celeris:\(encoded)@127.0.0.1:\(redis.port)/0"

        let schedule = FileManager.default.temporaryDirectory.appendingPathComponent("acl-beat-\(UUID()).json")
        try #"{"beat_schedule": {"tick": {"task": "add", "schedule": 1, "args": [20, 1]}}}"#.write(
            to: schedule, atomically: true, encoding: .utf8)
        let stack = try Stack(url: url, beatSchedule: schedule)
        defer { stack.stop() }
        try stack.checkTasksRun()
        // WebSocket subscription, /stats (inspect broadcast and replies), revoke.
        let ws = try WSFrame.open(port: stack.port)
        let id = try stack.post(#"{"task": "add", "args": [4, 5]}"#)
        try ws.send(WSFrame.make(opcode: 1, payload: Array(#"{"subscribe": ["\#(id)"]}"#.utf8)))
        var seen = ""
        while !seen.contains("SUCCESS") {
            seen = String(decoding: try WSFrame.read(ws).payload, as: UTF8.self)
        }
        XCTAssertTrue(seen.contains(id), seen)
        XCTAssertEqual(try HTTPClient.request("GET", port: stack.port, path: "/stats").status, 200)
        let inspected = await eventuallySuspending(timeout: 10) {
            (try? HTTPClient.request("GET", port: stack.port, path: "/stats").text.contains("\"hostname\"")) == true
        }
        XCTAssertTrue(inspected, "the worker answers inspect under the ACL user")
        XCTAssertEqual(try HTTPClient.request("DELETE", port: stack.port, path: "/tasks/\(UUID())").status, 202)
        // Beat's ticks are drained by the worker.
        let beatRan = await eventuallySuspending(timeout: 15) {
            ((try? root.command("KEYS", "celery-task-meta-*").elements?.count) ?? 0) > 25
        }
        XCTAssertTrue(beatRan, "beat's ticks ran")
        // The in-process client: its command and pub/sub connections.
        let client = try CelerisClient(broker: url)
        let sum = try await client.send("add", args: [.int(2), .int(40)]).get(timeout: .seconds(10))
        XCTAssertEqual(sum, .int(42))
        await client.close()

        let log = try root.command("ACL", "LOG").elements ?? []
        XCTAssertEqual(log.count, 0, "refused: \(log.map { "\($0)" })")
        // What ran, for the record (commands from scripts included).
        let stats = try root.command("INFO", "commandstats").text ?? ""
        let used = stats.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard line.hasPrefix("cmdstat_"), let colon = line.firstIndex(of: ":") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 8)..<colon])
        }
        print("commands used under the ACL user and admin: \(used.sorted().joined(separator: " "))")
        for name in ["worker", "frontend", "beat"] {
            XCTAssertFalse(stack.log(name).contains("NOPERM"), "\(name): \(stack.log(name))")
        }
    }

    /// A wrong password: the blocking connection throws saying so; the worker and frontend say
    /// so in their logs, and the frontend's /health is not healthy.
    func testWrongPasswordIsAClearError() throws {
        let redis = try LocalRedis()
        defer { redis.stop() }
        let admin = try redis.client()
        try admin.command("ACL", "SETUSER", "celeris", "on", ">right", "~*", "&*", "+@all")
        let url = "redis://celeris:wrong@127.0.0.1:\(redis.port)/0"
        XCTAssertThrowsError(try RedisConnection(endpoint: RedisEndpoint(url: url))) { error in
            XCTAssertTrue("\(error)".contains("authentication failed"), "\(error)")
            XCTAssertTrue("\(error)".contains("user celeris"), "\(error)")
            XCTAssertFalse("\(error)".contains("wrong@"), "\(error)")
        }
        let worker = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", url, "-c", "1", "--loglevel", "debug"], name: "worker")
        defer { worker.stop() }
        XCTAssertTrue(eventually(timeout: 10) { worker.log.contains("authentication failed") }, worker.log)
        XCTAssertFalse(worker.log.contains("wrong"), "the password is not logged")
        let port = freePort()
        let frontend = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", url, "--host", "127.0.0.1", "--port", "\(port)", "--loglevel", "debug"], name: "frontend")
        defer { frontend.stop() }
        XCTAssertTrue(eventually(timeout: 10) { frontend.log.contains("authentication failed") }, frontend.log)
        let health = try? HTTPClient.request("GET", port: port, path: "/health")
        XCTAssertNotEqual(health?.status, 200)
    }

    /// `unix:///path?db=1` for the worker (socket and io_uring), frontend and client.
    func testUnixSocket() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("celeris-sock-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("redis.sock").path
        let redis = try LocalRedis(extra: ["--unixsocket", path, "--unixsocketperm", "700"])
        defer { redis.stop() }
        for io in ["socket", "auto"] {
            let stack = try Stack(url: "unix://\(path)?db=1", workerFlags: ["--io", io])
            try stack.checkTasksRun()
            stack.stop()
        }
        // The tasks' results are in db 1 (the ?db=1 was used, not ignored).
        let inDb1 = try RedisConnection(endpoint: RedisEndpoint(url: "unix://\(path)?db=1"))
        XCTAssertGreaterThan(try inDb1.command("DBSIZE").integer ?? 0, 0)
        XCTAssertEqual(try redis.client().command("DBSIZE").integer, 0)
        let client = try CelerisClient(broker: "redis+socket://\(path)?virtual_host=1")
        let worker = try Stack(url: "unix://\(path)?db=1")
        defer { worker.stop() }
        let sum = try await client.send("add", args: [.int(1), .int(1)]).get(timeout: .seconds(10))
        XCTAssertEqual(sum, .int(2))
        await client.close()
    }

    /// `redis://down;redis://up`: every connection kind takes the second; when it goes down and
    /// the first comes up, they move over, and tasks keep running.
    func testFailoverListWithTheFirstServerDown() throws {
        let up = try LocalRedis()
        defer { up.stop() }
        let downPort = freePort()
        let url = "redis://127.0.0.1:\(downPort)/0;redis://127.0.0.1:\(up.port)/0"
        let direct = try RedisConnection(endpoint: RedisEndpoint(url: url))
        XCTAssertEqual(direct.server.port, up.port)
        let stack = try Stack(url: url)
        defer { stack.stop() }
        try stack.checkTasksRun()
        // The second server goes away, the first comes up: the stack follows.
        let second = try LocalRedis(port: downPort)
        defer { second.stop() }
        up.stop()
        XCTAssertTrue(
            eventually(timeout: 30) { (try? stack.checkTasksRun(timeout: 2)) != nil },
            "tasks run on the first server once the second is gone\n\(stack.log("worker"))\n\(stack.log("frontend"))")
        XCTAssertGreaterThan(try second.client().command("DBSIZE").integer ?? 0, 0)
    }
}

/// A redis-server of the test's own (any flags), on a loopback port.
private final class LocalRedis {
    let port: Int
    private var process: Spawned?

    init(port: Int = freePort(), extra: [String] = []) throws {
        self.port = port
        let p = try Spawned(
            "/usr/bin/redis-server",
            ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"] + extra,
            name: "redis-\(port)")
        process = p
        let endpoint = RedisEndpoint(host: "127.0.0.1", port: port)
        guard eventually(timeout: 10, { (try? RedisConnection(endpoint: endpoint).command("PING")) != nil }) else {
            throw TestFailure("redis-server did not start on \(port): \(p.log)")
        }
    }

    func client() throws -> RedisConnection {
        try RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: port))
    }

    func stop() {
        process?.stop()
        process = nil
    }
}

/// celeris-worker and celeris-frontend (and beat, when given a schedule) on one broker URL.
private final class Stack {
    let port = freePort()
    private var processes: [String: Spawned] = [:]

    init(url: String, workerFlags: [String] = [], beatSchedule: URL? = nil) throws {
        processes["worker"] = try Spawned(
            try TestPaths.executable("celeris-worker"), ["-b", url, "-c", "2", "--loglevel", "debug"] + workerFlags,
            env: ["CELERIS_STEP_SECONDS": "0"], name: "worker")
        processes["frontend"] = try Spawned(
            try TestPaths.executable("celeris-frontend"),
            ["-b", url, "--host", "127.0.0.1", "--port", "\(port)", "--loglevel", "debug"], name: "frontend")
        if let beatSchedule {
            processes["beat"] = try Spawned(
                try TestPaths.executable("celeris-beat"),
                ["-b", url, "-s", beatSchedule.path, "-n", "acl@test", "--loglevel", "debug"], name: "beat")
        }
        let port = port
        guard eventually(timeout: 15, { (try? HTTPClient.request("GET", port: port, path: "/health").status) == 200 })
        else { throw TestFailure("frontend not healthy on \(url):\n\(log("frontend"))") }
    }

    func log(_ name: String) -> String { processes[name]?.log ?? "" }

    /// POST /tasks; the task id.
    func post(_ body: String) throws -> String {
        let r = try HTTPClient.request("POST", port: port, path: "/tasks", body: body)
        guard r.status == 200, let id = r.json?["task_id"]?.stringValue else {
            throw TestFailure("POST /tasks: \(r.status) \(r.text)")
        }
        return id
    }

    /// Ten `add` tasks through POST /tasks reach SUCCESS with their sums on GET /status.
    func checkTasksRun(timeout: Double = 15) throws {
        let ids = try (0..<10).map { i in (i, try post(#"{"task": "add", "args": [\#(i), 100]}"#)) }
        for (i, id) in ids {
            var last = ""
            let done = eventually(timeout: timeout) {
                last = (try? HTTPClient.request("GET", port: port, path: "/status/\(id)").text) ?? ""
                return last.contains("SUCCESS")
            }
            guard done, last.contains("\(i + 100)") else {
                throw TestFailure("task \(id) did not succeed: \(last)\n\(log("worker"))")
            }
        }
    }

    func stop() {
        for p in processes.values { p.stop() }
        processes = [:]
    }
}
