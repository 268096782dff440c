"""Handing a dataset to a Ray cluster (DESIGN.md §7): ``loupe cluster submit|status|logs|stop``.

The cluster fills the same content-addressed cache a desktop reads, so any desktop on that
Redis opens the map warm. Only :mod:`engine.cluster.ray_backend` imports Ray (an import-linter
contract); everything else here is plain Python that the desktop, the CLI and the job's own
driver share: the job's description (:mod:`.spec`), its secrets (:mod:`.secrets`), who may
submit where (:mod:`.access`), the progress lines the driver prints and clients read
(:mod:`.progress`), the actors' work (:mod:`.batches`) and the final map (:mod:`.final_map`).
"""
