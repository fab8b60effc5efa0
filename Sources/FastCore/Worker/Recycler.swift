/// What finished tasks leave for the next deliveries: their runners (the next
/// delivery is decoded into one), envelope buffers and tag strings (the next claims
/// copy into them), so a worker in steady state allocates nothing per task.
///
///     var recycler = Recycler()
///     let runner = recycler.popRunner()      // nil: make a new one
///     recycler.recycle(&finished, capacity: 64)
struct Recycler {
    /// Envelope buffers and tags for the next claims' messages.
    var spare = SpareBuffers()
    /// Finished tasks' runners that nothing else holds.
    private var runners: [TaskContext] = []

    mutating func popRunner() -> TaskContext? { runners.popLast() }

    /// Put back a runner `popRunner` gave that was not used.
    mutating func putBack(_ runner: TaskContext) { runners.append(runner) }

    /// Keep a finished task's runner for the next delivery, and its envelope buffer and
    /// tag for the next claims, when nothing else holds them (an executor thread that has
    /// not yet let go, a chord join, a remote-control reply: then they are left to go).
    mutating func recycle(_ h: inout TaskContext, capacity: Int) {
        guard isKnownUniquelyReferenced(&h), let (envelope, tag) = h.message.takeBuffers() else { return }
        spare.keep(envelope: envelope)
        spare.keep(tag: tag)
        if runners.count < capacity { runners.append(h) }
    }
}
