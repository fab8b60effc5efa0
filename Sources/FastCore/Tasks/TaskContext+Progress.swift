extension TaskContext {
    /// Store a PROGRESS state with `meta` encoded as JSON (Celery's
    /// `update_state(state="PROGRESS", meta=…)`).
    ///
    ///     struct Step: Encodable { var done: Int; var total: Int }
    ///     try ctx.progress(Step(done: 3, total: 10))
    public func progress(_ meta: some Encodable) throws {
        updateState(.progress, meta: try JSONValueEncoder.encode(meta))
    }
}
