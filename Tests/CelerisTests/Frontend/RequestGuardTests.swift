import FastCore
import XCTest

/// `RequestGuard`'s parsing and defaults, without a server.
final class RequestGuardTests: XCTestCase {
    func request(_ headers: [(name: String, value: String)], body: String = "") -> HTTPRequest {
        HTTPRequest(method: "POST", target: "/tasks", headers: headers, body: Array(body.utf8))
    }

    func testHostNames() {
        XCTAssertEqual(RequestGuard.hostName("LocalHost:8000"), "localhost")
        XCTAssertEqual(RequestGuard.hostName("[::1]:8000"), "::1")
        XCTAssertEqual(RequestGuard.hostName("[::1]"), "::1")
        XCTAssertEqual(RequestGuard.hostName("example.com"), "example.com")
        XCTAssertTrue(RequestGuard.isLoopback("127.0.0.1"))
        XCTAssertTrue(RequestGuard.isLoopback("::1"))
        XCTAssertFalse(RequestGuard.isLoopback("0.0.0.0"))
    }

    func testDefaultsDependOnTheListenAddress() {
        let evil = request([("Host", "evil.example")])
        XCTAssertEqual(
            RequestGuard(listenHost: "127.0.0.1", allowedHosts: [], allowedOrigins: []).hostRefusal(evil)?.status, 400)
        XCTAssertNil(RequestGuard(listenHost: "0.0.0.0", allowedHosts: [], allowedOrigins: []).hostRefusal(evil))
        XCTAssertEqual(
            RequestGuard(listenHost: "0.0.0.0", allowedHosts: ["api.example"], allowedOrigins: []).hostRefusal(evil)?
                .status, 400)
        XCTAssertNil(
            RequestGuard(listenHost: "0.0.0.0", allowedHosts: ["*.example"], allowedOrigins: []).hostRefusal(evil))
    }

    func testOrigins() {
        let g = RequestGuard(listenHost: "0.0.0.0", allowedHosts: [], allowedOrigins: ["https://UI.example"])
        XCTAssertNil(g.originRefusal(request([("Host", "api.example"), ("Origin", "https://api.example")])))
        XCTAssertNil(g.originRefusal(request([("Host", "api.example"), ("Origin", "https://ui.example")])))
        XCTAssertNil(g.originRefusal(request([("Host", "api.example")])), "no Origin: not a browser")
        XCTAssertEqual(
            g.originRefusal(request([("Host", "api.example"), ("Origin", "https://api.example.evil")]))?.status, 403)
        XCTAssertEqual(
            g.originRefusal(request([("Host", "api.example:8000"), ("Origin", "http://api.example")]))?.status, 403)
    }

    func testContentTypes() {
        let body = #"{"task": "add"}"#
        XCTAssertNil(RequestGuard.contentTypeRefusal(request([], body: " \r\n")), "a blank body needs no type")
        XCTAssertEqual(RequestGuard.contentTypeRefusal(request([], body: body))?.status, 415)
        XCTAssertEqual(
            RequestGuard.contentTypeRefusal(request([("Content-Type", "text/plain")], body: body))?.status, 415)
        XCTAssertEqual(RequestGuard.contentTypeRefusal(request([("Content-Type", "+json")], body: body))?.status, 415)
        XCTAssertNil(
            RequestGuard.contentTypeRefusal(request([("content-type", "application/problem+json")], body: body)))
    }
}
