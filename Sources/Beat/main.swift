import Celeris

// `celeris-beat`: the periodic-task scheduler (see `CelerisBeat`).
CelerisBeat.main()
