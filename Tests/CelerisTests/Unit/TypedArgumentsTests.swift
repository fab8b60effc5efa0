import FastCore
import Foundation
import XCTest

/// Celery's `args`/`kwargs` bound to Codable types as Python binds a call, the Python
/// wording of every refusal (checked against Python 3 itself), and the JSON value coders.
final class TypedArgumentsTests: XCTestCase {
    struct Add: Codable, Sendable, Equatable {
        var x: Int
        var y: Int
    }
    struct Three: Codable, Sendable, Equatable {
        var x: Int
        var y: Int
        var z: Int
    }
    struct AddOptional: Codable, Sendable, Equatable {
        var x: Int
        var y: Int?
    }
    struct Point: Codable, Sendable, Equatable {
        var x: Int
        var y: Double
    }
    struct Shape: Codable, Sendable, Equatable {
        var name: String
        var points: [Point]
        var tags: [String: Int]
        var origin: Point?
        var extra: JSON?
    }
    struct Widths: Codable, Sendable, Equatable {
        var small: Int8
        var medium: Int32
        var unsigned: UInt
        var flag: Bool
        var ratio: Float
    }
    enum Color: String, Codable, Sendable { case red, green }
    struct Paint: Codable, Sendable, Equatable {
        var color: Color
        var coats: Int
    }
    struct Stamped: Codable, Sendable, Equatable {
        var at: Date
        var link: URL
    }

    private func decode<T: Decodable>(
        _ type: T.Type, _ args: [JSON] = [], _ kwargs: [(key: String, value: JSON)] = [], task: String = "add"
    ) throws(TaskFailure) -> T {
        try TypedArguments.decode(type, args: args, kwargs: kwargs, task: task)
    }

    /// The failure's (type, message) for a call that must fail.
    private func failure<T: Decodable>(
        _ type: T.Type, _ args: [JSON] = [], _ kwargs: [(key: String, value: JSON)] = [], task: String = "add",
        file: StaticString = #filePath, line: UInt = #line
    ) -> (String, String) {
        do {
            let v = try decode(type, args, kwargs, task: task)
            XCTFail("decoded \(v)", file: file, line: line)
            return ("", "")
        } catch {
            return (error.type, error.arguments.first?.stringValue ?? "")
        }
    }

    func testPositionalKeywordAndMixedCallsBindAsInPython() throws {
        XCTAssertEqual(try decode(Add.self, [2, 3]), Add(x: 2, y: 3))
        XCTAssertEqual(try decode(Add.self, [], [("y", 3), ("x", 2)]), Add(x: 2, y: 3))
        XCTAssertEqual(try decode(Add.self, [2], [("y", 3)]), Add(x: 2, y: 3))
        XCTAssertEqual(try decode(AddOptional.self, [2]), AddOptional(x: 2, y: nil))
        XCTAssertEqual(try decode(AddOptional.self, [2, nil]), AddOptional(x: 2, y: nil))
        XCTAssertEqual(try decode(AddOptional.self, [], [("x", 1), ("y", 4)]), AddOptional(x: 1, y: 4))
        XCTAssertEqual(try decode(NoArguments.self), NoArguments())
        XCTAssertEqual(try decode([Int].self, [1, 2, 3]), [1, 2, 3])
        XCTAssertEqual(try decode([JSON].self, [1, "a", nil]), [1, "a", nil])
        XCTAssertEqual(try decode(Int.self, [7]), 7)
        XCTAssertEqual(try decode(Int.self, [], [("value", 7)]), 7)
        XCTAssertEqual(try decode(Int?.self), nil)
        XCTAssertEqual(try decode(JSON.self, [["a": 1]]), ["a": 1])
        XCTAssertEqual(try decode([String: Int].self, [], [("a", 1), ("b", 2)]), ["a": 1, "b": 2])
    }

    func testEveryBindingFailureHasPythonsWording() {
        XCTAssertEqual(failure(Add.self, [2]).1, "add() missing 1 required positional argument: 'y'")
        XCTAssertEqual(failure(Add.self).1, "add() missing 2 required positional arguments: 'x' and 'y'")
        XCTAssertEqual(
            failure(Three.self, task: "three").1, "three() missing 3 required positional arguments: 'x', 'y', and 'z'")
        XCTAssertEqual(failure(Add.self, [1, 2, 3]).1, "add() takes 2 positional arguments but 3 were given")
        XCTAssertEqual(
            failure(AddOptional.self, [1, 2, 3]).1, "add() takes from 1 to 2 positional arguments but 3 were given")
        XCTAssertEqual(failure(NoArguments.self, [1]).1, "add() takes 0 positional arguments but 1 was given")
        XCTAssertEqual(failure(Int.self, [1, 2]).1, "add() takes 1 positional argument but 2 were given")
        XCTAssertEqual(failure(Int.self).1, "add() missing 1 required positional argument: 'value'")
        XCTAssertEqual(failure(Add.self, [1, 2], [("z", 3)]).1, "add() got an unexpected keyword argument 'z'")
        XCTAssertEqual(failure(NoArguments.self, [], [("z", 3)]).1, "add() got an unexpected keyword argument 'z'")
        XCTAssertEqual(failure([Int].self, [1], [("z", 3)]).1, "add() got an unexpected keyword argument 'z'")
        XCTAssertEqual(failure(Add.self, [1], [("x", 2)]).1, "add() got multiple values for argument 'x'")
        // Python's order: keyword arguments first, then too many positional, then missing, then values.
        XCTAssertEqual(failure(Add.self, [1, 2, 3], [("y", 1)]).1, "add() got multiple values for argument 'y'")
        XCTAssertEqual(failure(Add.self, ["a", 2, 3]).1, "add() takes 2 positional arguments but 3 were given")
        XCTAssertEqual(
            failure(Three.self, ["a"], task: "f").1, "f() missing 2 required positional arguments: 'y' and 'z'")
        for (type, _) in [failure(Add.self, [2]), failure(Add.self, [1, 2, 3]), failure(Add.self, [1], [("x", 2)])] {
            XCTAssertEqual(type, "TypeError")
        }
    }

    func testValuesThatDoNotFitAreTypeErrorsNamingTheArgument() {
        XCTAssertEqual(failure(Add.self, ["2", 3]).0, "TypeError")
        XCTAssertEqual(failure(Add.self, ["2", 3]).1, "add() argument 'x' must be int, not str")
        XCTAssertEqual(failure(Add.self, [2, nil]).1, "add() argument 'y' must be int, not None")
        XCTAssertEqual(failure(Add.self, [true, 1]).1, "add() argument 'x' must be int, not bool")
        // A float is refused where an integer is wanted, even a whole one.
        XCTAssertEqual(failure(Add.self, [3.0, 1]).1, "add() argument 'x' must be int, not float")
        XCTAssertEqual(failure(Add.self, [1, [1]]).1, "add() argument 'y' must be int, not list")
        XCTAssertEqual(
            failure(Widths.self, [], [("small", 1), ("medium", 1), ("unsigned", 1), ("flag", 1), ("ratio", 1)]).1,
            "add() argument 'flag' must be bool, not int")
        XCTAssertEqual(failure([Int].self, [1, "b"]).1, "add() argument 2 must be int, not str")
        XCTAssertEqual(failure(Int.self, [[:] as JSON]).1, "add() argument 'value' must be int, not dict")
        XCTAssertEqual(
            failure(Shape.self, ["s", [["x": 1, "y": 2], ["x": "1", "y": 2]], [:] as JSON]).1,
            "add() argument 'points[1].x' must be int, not str")
        XCTAssertEqual(
            failure(Shape.self, ["s", [], [:] as JSON, ["x": 1]]).1, "add() argument 'origin' has no key 'y'")
        XCTAssertEqual(
            failure(Shape.self, ["s", [:] as JSON, [:] as JSON]).1, "add() argument 'points' must be list, not dict")
        XCTAssertEqual(failure(Shape.self, ["s", [], ["a": "b"]]).1, "add() argument 'tags.a' must be int, not str")
        // An enum's own refusal is a ValueError.
        let paint = failure(Paint.self, ["purple", 2], task: "paint")
        XCTAssertEqual(paint.0, "ValueError")
        XCTAssertTrue(paint.1.hasPrefix("paint() argument 'color' is invalid: "), paint.1)
    }

    func testIntegersOutOfRangeAreValueErrorsNotTraps() {
        let ok: [(key: String, value: JSON)] = [
            ("small", 1), ("medium", 1), ("unsigned", 1), ("flag", true), ("ratio", 1),
        ]
        func with(_ key: String, _ value: JSON) -> [(key: String, value: JSON)] {
            ok.map { $0.key == key ? (key: key, value: value) : $0 }
        }
        XCTAssertEqual(
            try decode(Widths.self, [], ok), Widths(small: 1, medium: 1, unsigned: 1, flag: true, ratio: 1))
        let cases: [(String, JSON, String)] = [
            ("small", 128, "add() argument 'small' 128 is out of range for Int8"),
            ("medium", 3_000_000_000, "add() argument 'medium' 3000000000 is out of range for Int32"),
            ("unsigned", -1, "add() argument 'unsigned' -1 is out of range for UInt"),
            ("ratio", 1e300, "add() argument 'ratio' 1e+300 is out of range for Float"),
        ]
        for (key, value, message) in cases {
            let f = failure(Widths.self, [], with(key, value))
            XCTAssertEqual(f.0, "ValueError", key)
            XCTAssertEqual(f.1, message)
        }
        // A Python int past Int64 reaches the decoder as a float (the JSON reader's integers are
        // 64-bit): still out of range, not "must be int".
        let big = (try? JSONParser.parse("[1180591620717411303424]")) ?? .null
        XCTAssertEqual(
            failure(Int.self, big.arrayValue ?? []).1,
            "add() argument 'value' 1.1805916207174113e+21 is out of range for Int")
        XCTAssertEqual(try decode(Int64.self, [.int(.max)]), .max)
        XCTAssertEqual(try decode(Point.self, [1, 2]), Point(x: 1, y: 2))  // an int where a Double is wanted
    }

    func testNestedOptionalAndSpecialValues() throws {
        let shape = try decode(
            Shape.self, ["s"],
            [("tags", ["a": 1]), ("points", [["x": 1, "y": 2.5]]), ("extra", ["k": [1, 2]])])
        XCTAssertEqual(
            shape, Shape(name: "s", points: [Point(x: 1, y: 2.5)], tags: ["a": 1], origin: nil, extra: ["k": [1, 2]]))
        let withNull = try decode(Shape.self, ["s", [], [:] as JSON, nil, nil])
        XCTAssertNil(withNull.origin)
        XCTAssertNil(withNull.extra)
        // A datetime as Celery 5.7 sends one (kombu's tagged form), or a bare ISO string.
        let tagged: JSON = ["__type__": "datetime", "__value__": "2026-11-21T07:30:17.500000+00:00"]
        let s = try decode(Stamped.self, [tagged, "https://example.com/a?b=1"])
        XCTAssertEqual(s.at.timeIntervalSince1970, 1_795_246_217.5, accuracy: 1e-6)
        XCTAssertEqual(s.link.absoluteString, "https://example.com/a?b=1")
        XCTAssertEqual(try decode(Stamped.self, ["2026-11-21T07:30:17Z", "x"]).at.timeIntervalSince1970, 1_795_246_217)
        XCTAssertEqual(try decode(Date.self, [tagged]).timeIntervalSince1970, 1_795_246_217.5, accuracy: 1e-6)
        XCTAssertEqual(failure(Stamped.self, [true, "x"]).1, "add() argument 'at' must be datetime, not bool")
        XCTAssertEqual(
            failure(Stamped.self, [1.5e300, "x"]).1, "add() argument 'at' 1.5e+300 is out of range for Date")
        XCTAssertTrue(failure(Stamped.self, ["yesterday", "x"]).1.hasPrefix("add() argument 'at' is invalid"))
    }

    func testOutputsEncodeToJSONDirectlyAndBack() throws {
        let shape = Shape(
            name: "s", points: [Point(x: 1, y: 2.5)], tags: ["a": 1], origin: Point(x: -3, y: 0), extra: ["k": nil])
        let json = try TypedResult.encode(shape)
        XCTAssertEqual(
            json.serialized(),
            #"{"name": "s", "points": [{"x": 1, "y": 2.5}], "tags": {"a": 1}, "origin": {"x": -3, "y": 0.0}, "extra": {"k": null}}"#
        )
        XCTAssertEqual(try TypedResult.decode(Shape.self, from: json), shape)
        XCTAssertEqual(try TypedResult.encode(Float(0.1)), .double(0.1))
        XCTAssertEqual(try TypedResult.encode(Optional<Int>.none), .null)
        XCTAssertEqual(try TypedResult.encode([UInt8(1), 2]), [1, 2])
        XCTAssertThrowsError(try TypedResult.encode(UInt64.max))
        let date = Date(timeIntervalSince1970: 1_795_246_217.5)
        XCTAssertEqual(
            try TypedResult.encode(date), ["__type__": "datetime", "__value__": "2026-11-21T07:30:17.500000+00:00"])
        XCTAssertEqual(try TypedResult.decode(Date.self, from: try TypedResult.encode(date)), date)
        // A result that does not fit is Swift's DecodingError.
        XCTAssertThrowsError(try TypedResult.decode(Int.self, from: "5")) { error in
            guard case DecodingError.typeMismatch = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try TypedResult.decode(Point.self, from: ["x": 1])) { error in
            guard case DecodingError.keyNotFound(let key, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key.stringValue, "y")
        }
    }

    func testArgumentsEncodeAsCeleryArgsAndKwargs() throws {
        let keyed = try TypedArguments.encode(AddOptional(x: 2, y: nil))
        XCTAssertEqual(keyed.args, [])
        XCTAssertEqual(keyed.kwargs.map(\.key), ["x"])
        let both = try TypedArguments.encode(Add(x: 2, y: 3))
        XCTAssertEqual(both.kwargs.map(\.key), ["x", "y"])
        XCTAssertEqual(both.kwargs.map(\.value), [2, 3])
        XCTAssertEqual(try decode(Add.self, both.args, both.kwargs), Add(x: 2, y: 3))
        XCTAssertEqual(try TypedArguments.encode([1, 2]).args, [1, 2])
        XCTAssertEqual(try TypedArguments.encode(5).args, [5])
        XCTAssertEqual(try TypedArguments.encode(["a": 1] as JSON).args, [["a": 1]])
        let none = try TypedArguments.encode(NoArguments())
        XCTAssertTrue(none.args.isEmpty && none.kwargs.isEmpty)
    }

    /// `JSON` through Foundation's coders and through Celeris' own (order and integers kept).
    func testJSONIsCodable() throws {
        let value: JSON = ["b": 1, "a": [true, nil, 2.5, "s", ["n": -7]], "big": .int(.max)]
        let text = try JSONEncoder().encode(value)
        XCTAssertEqual(try JSONDecoder().decode(JSON.self, from: text), value)
        XCTAssertEqual(try TypedResult.decode(JSON.self, from: value).serialized(), value.serialized())
        XCTAssertEqual(try TypedResult.encode(value).serialized(), value.serialized())
        struct Job: Codable, Equatable {
            var name: String
            var payload: JSON
        }
        let job = Job(name: "j", payload: value)
        XCTAssertEqual(try JSONDecoder().decode(Job.self, from: try JSONEncoder().encode(job)), job)
        XCTAssertEqual(try TypedResult.encode(job)["payload"]?.serialized(), value.serialized())
    }

    /// "ok", or the failure's exception type.
    private func outcome<T: Decodable>(_ type: T.Type, _ args: [JSON], _ kwargs: [(key: String, value: JSON)]) -> String
    {
        do {
            _ = try decode(type, args, kwargs)
            return "ok"
        } catch {
            return error.type
        }
    }

    /// Random calls never trap: each decodes or fails with a TypeError or ValueError.
    func testArbitraryCallsNeverTrap() {
        var rng = SplitMix(seed: 18)
        func value(_ depth: Int) -> JSON {
            switch rng.next() % (depth > 2 ? 6 : 8) {
            case 0: return .null
            case 1: return .bool(rng.next() % 2 == 0)
            case 2: return .int(Int64(bitPattern: rng.next()) >> (rng.next() % 64))
            case 3: return .double(Double(Int64(bitPattern: rng.next())) / 1e3)
            case 4: return .string(["", "x", "y", "red", "2026-11-21T07:30:17Z"][Int(rng.next() % 5)])
            case 5: return .double([.nan, .infinity, -0.0, 1e300][Int(rng.next() % 4)])
            case 6: return .array((0..<rng.next() % 4).map { _ in value(depth + 1) })
            default:
                return .object(
                    (0..<rng.next() % 4).map { _ in
                        (key: ["x", "y", "z", "name"][Int(rng.next() % 4)], value: value(depth + 1))
                    })
            }
        }
        var outcomes: [String: Int] = [:]
        for _ in 0..<3000 {
            let args = (0..<rng.next() % 4).map { _ in value(0) }
            let kwargs = (0..<rng.next() % 3).map { _ in
                (key: ["x", "y", "z", "points", "color", "value"][Int(rng.next() % 6)], value: value(0))
            }
            for outcome in [
                outcome(Add.self, args, kwargs), outcome(AddOptional.self, args, kwargs),
                outcome(Shape.self, args, kwargs), outcome(Widths.self, args, kwargs),
                outcome(Paint.self, args, kwargs), outcome(Stamped.self, args, kwargs),
                outcome([Int8].self, args, kwargs), outcome(JSON.self, args, kwargs),
            ] {
                XCTAssertTrue(["ok", "TypeError", "ValueError"].contains(outcome), outcome)
                outcomes[outcome, default: 0] += 1
            }
        }
        XCTAssertGreaterThan(outcomes["ok"] ?? 0, 0, "\(outcomes)")
        XCTAssertGreaterThan(outcomes["TypeError"] ?? 0, 0, "\(outcomes)")
    }

    /// Each binding failure's text is what Python 3 itself says for the same call to a
    /// function of the same signature.
    func testMessagesMatchPython() throws {
        let cases: [(String, [JSON], [(key: String, value: JSON)])] = [
            ("add", [2], []), ("add", [], []), ("add", [1, 2, 3], []), ("add", [1, 2], [("z", 3)]),
            ("add", [1], [("x", 2)]), ("add", [1, 2, 3], [("y", 1)]), ("add", [1, 2, 3], [("z", 1)]),
            ("add", [], [("y", 1)]), ("three", [], []), ("three", [1], []), ("three", [1], [("z", 3)]),
            ("add_opt", [1, 2, 3], []), ("add_opt", [], [("y", 2)]), ("add_opt", [1], [("q", 2)]),
            ("none", [1], []), ("none", [1, 2], []), ("none", [], [("a", 1)]), ("square", [1, 2], []),
            ("square", [], []), ("square", [], [("x", 1)]), ("many", [1], [("x", 2)]),
            ("kw", [1], []), ("kw", [1], [("a", 1)]),
        ]
        func swiftMessage(_ name: String, _ args: [JSON], _ kwargs: [(key: String, value: JSON)]) -> String {
            switch name {
            case "add": return failure(Add.self, args, kwargs, task: name).1
            case "three": return failure(Three.self, args, kwargs, task: name).1
            case "add_opt": return failure(AddOptional.self, args, kwargs, task: name).1
            case "none": return failure(NoArguments.self, args, kwargs, task: name).1
            case "square": return failure(Int.self, args, kwargs, task: name).1
            case "kw": return failure([String: Int].self, args, kwargs, task: name).1
            default: return failure([Int].self, args, kwargs, task: name).1
            }
        }
        let script = """
            import json, sys
            def add(x, y): pass
            def three(x, y, z): pass
            def add_opt(x, y=None): pass
            def none(): pass
            def square(value): pass
            def many(*args): pass
            def kw(**kwargs): pass
            out = []
            for name, args, kwargs in json.loads(sys.argv[1]):
                try:
                    globals()[name](*args, **kwargs)
                    out.append(None)
                except TypeError as e:
                    out.append(str(e))
            print("RESULT " + json.dumps(out))
            """
        let encoded = JSON.array(
            cases.map { .array([.string($0.0), .array($0.1), .object($0.2)]) }
        ).serialized()
        let p = try Spawned(try TestPaths.python(), ["-c", script, encoded], name: "pytypeerror")
        XCTAssertTrue(eventually(timeout: 60) { !p.isRunning }, p.log)
        let python = try XCTUnwrap(try resultLine(p.log).arrayValue)
        XCTAssertEqual(python.count, cases.count)
        for (i, c) in cases.enumerated() {
            XCTAssertEqual(.string(swiftMessage(c.0, c.1, c.2)), python[i], "\(c.0)(*\(c.1), **\(c.2))")
        }
    }
}

/// A small deterministic generator (SplitMix64) for the never-trap test.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
