import Logging

/// The consumer's chord joins: a finished chord header task is counted into its chord
/// (the body sent when it is the last one in) before its delivery is acknowledged, and a
/// join that failed is tried again with `ChordJoinRetries`' backoff.
extension Consumer {
    /// Try again the chord joins that failed, when due; a joined part's delivery is acknowledged and let go.
    func retryChordJoins(_ now: Double) {
        guard chordJoins.isDue(now), settledConnection() != nil else { return }
        for (part, tag) in chordJoins.takeAll() {
            if joinChord(part, tag: tag) {
                if let tag { release(tag) }
            } else {
                chordJoins.failed(part, tag: tag, now: clock.now())
            }
        }
        chordJoins.settled()
    }

    /// Count a finished header task into its chord (sending the body when it is the last
    /// one in), then acknowledge it; false when that failed (nothing acknowledged: the
    /// join is tried again). Until the ack, a crash means a rerun, which the chord's
    /// dedupe set absorbs.
    func joinChord(_ part: ChordPart, tag: String?) -> Bool {
        guard let r = pipeline.connection else { return false }
        do {
            try ChordJoin.partReturn(
                part, on: r, routes: configuration.routes, logger: logger, now: clock.now(),
                expires: configuration.resultExpires)
            if let tag { pipeline.own += DeliveryClaim.ackCommands(tag: tag) }
            return true
        } catch {
            chordJoinFailures.modify { $0 += 1 }
            metrics.chordJoinFailed()
            if case .reply(let m) = error, WriteFailure(errors: [m]) == nil {
                // Not the server's state (a wrong type…): it would fail the same way again.
                // The chord fails, as Celery's does: the body's result is a ChordError.
                logger.error("chord \(part.groupId): counting \(part.taskId) failed (\(m)); the chord fails")
                do {
                    try ChordJoin.fail(part, cause: m, on: r, now: clock.now(), expires: configuration.resultExpires)
                    if let tag { pipeline.own += DeliveryClaim.ackCommands(tag: tag) }
                    return true
                } catch {
                    logger.error("chord \(part.groupId): storing its failure failed (\(error)); tried again")
                    if case .reply = error {} else { dropConnection(error) }
                    return false
                }
            }
            logger.error(
                "chord \(part.groupId): counting \(part.taskId) failed (\(error)); the delivery stays held and the join is tried again"
            )
            if case .reply = error {} else { dropConnection(error) }
            return false
        }
    }
}
