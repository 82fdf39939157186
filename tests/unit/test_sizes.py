"""Size resolution: the tutorial's table, explicit instance types, no fit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slipway.domain.sizes import (
    Catalog,
    Flavor,
    NoFlavorFits,
    Size,
    UnknownInstanceType,
    pick_flavor,
    resolve_size,
)

EXOSCALE = Catalog(
    "exoscale",
    (
        Flavor("Micro", 1, 0.5),
        Flavor("Tiny", 1, 1),
        Flavor("Small", 2, 2),
        Flavor("Medium", 2, 4),
        Flavor("Large", 4, 8),
        Flavor("Extra-large", 4, 16),
        Flavor("Huge", 8, 32),
    ),
)
ULTIMUM = Catalog(
    "ultimum",
    (
        Flavor("Basic", 1, 1),
        Flavor("Standard", 2, 2),
        Flavor("Standard Plus", 4, 4),
        Flavor("Large", 8, 8),
        Flavor("Large Plus", 16, 16),
        Flavor("Extra Large", 32, 32),
    ),
)

# (cpu, ram) → (Exoscale, Ultimum): every row of the tutorial's table, each
# resource asked for exactly as the flavor offers it.
TUTORIAL = [
    ((1, 0.5), ("Micro", "Basic")),
    ((1, 1), ("Tiny", "Basic")),
    ((2, 2), ("Small", "Standard")),
    ((2, 4), ("Medium", "Standard Plus")),
    ((4, 4), ("Large", "Standard Plus")),
    ((4, 8), ("Large", "Large")),
    ((4, 16), ("Extra-large", "Large Plus")),
    ((8, 8), ("Huge", "Large")),
    ((8, 32), ("Huge", "Extra Large")),
    ((16, 16), (None, "Large Plus")),
    ((32, 32), (None, "Extra Large")),
]


@pytest.mark.parametrize(("request_", "expected"), TUTORIAL)
def test_each_row_of_the_tutorial_table_resolves_to_its_flavors(
    request_: tuple[int, float], expected: tuple[str | None, str]
) -> None:
    size = Size(cpu=request_[0], ram=request_[1])
    for catalog, name in zip((EXOSCALE, ULTIMUM), expected, strict=True):
        if name is None:
            with pytest.raises(NoFlavorFits):
                pick_flavor(catalog, size)
        else:
            assert pick_flavor(catalog, size).name == name


def test_no_fit_names_the_closest_flavor_and_what_it_lacks() -> None:
    with pytest.raises(NoFlavorFits) as caught:
        pick_flavor(EXOSCALE, Size(cpu=16, ram=16))
    assert caught.value.closest is not None
    assert caught.value.closest.name == "Huge"
    assert "lacks 8 CPU" in str(caught.value)


def test_an_explicit_instance_type_wins_and_must_exist() -> None:
    pick = resolve_size(EXOSCALE, Size(cpu=1, ram=1), "Large")
    assert pick.flavor.name == "Large"
    assert pick.explicit
    with pytest.raises(UnknownInstanceType, match="'Gigantic' is not in catalog exoscale"):
        resolve_size(EXOSCALE, Size(cpu=1), "Gigantic")


def test_an_explicit_instance_type_smaller_than_the_size_is_warned_about() -> None:
    pick = resolve_size(EXOSCALE, Size(cpu=4, ram=8), "Small")
    assert pick.warnings and "lacks 2 CPU and 6 GB RAM" in pick.warnings[0]


def test_prices_break_ties_between_equally_small_flavors() -> None:
    catalog = Catalog(
        "aws",
        (
            Flavor("c5.large", 2, 4, price=0.096),
            Flavor("t3.medium", 2, 4, price=0.0456),
            Flavor("m5.large", 2, 8, price=0.107),
        ),
    )
    assert pick_flavor(catalog, Size(cpu=2, ram=4)).name == "t3.medium"


def test_absurd_sizes_are_reported_per_key() -> None:
    assert [k for k, _ in Size(cpu=0, ram=-1, disk=10**9).problems()] == ["cpu", "ram", "disk"]
    assert Size(cpu=2, ram=4, disk=10).problems() == []


flavors = st.builds(
    Flavor,
    name=st.text(alphabet="abcdefgh", min_size=1, max_size=6),
    cpu=st.integers(1, 64),
    ram=st.sampled_from([0.5, 1, 2, 3, 4, 8, 16, 32, 64]),
    disk=st.one_of(st.none(), st.sampled_from([10.0, 20.0, 50.0, 100.0])),
    price=st.none(),
)
catalogs = st.lists(flavors, min_size=1, max_size=12, unique_by=lambda f: f.name).map(
    lambda fs: Catalog("generated", tuple(fs))
)
sizes = st.builds(
    Size,
    cpu=st.one_of(st.none(), st.integers(1, 64)),
    ram=st.one_of(st.none(), st.sampled_from([0.25, 1, 2, 4, 8, 48])),
    disk=st.one_of(st.none(), st.sampled_from([5.0, 20.0, 80.0])),
)


@given(catalogs, sizes)
def test_the_pick_fits_and_no_fitting_flavor_is_smaller_on_every_resource(
    catalog: Catalog, size: Size
) -> None:
    fitting = [f for f in catalog.flavors if f.fits(size)]
    try:
        pick = pick_flavor(catalog, size)
    except NoFlavorFits as exc:
        assert not fitting
        assert exc.closest in catalog.flavors
        return
    assert pick.fits(size)
    for other in fitting:
        smaller_everywhere = (
            other.cpu <= pick.cpu
            and other.ram <= pick.ram
            and (other.disk or 0) <= (pick.disk or 0)
        )
        strictly = (
            other.cpu < pick.cpu or other.ram < pick.ram or (other.disk or 0) < (pick.disk or 0)
        )
        assert not (smaller_everywhere and strictly), f"{other} is smaller than {pick}"


@given(catalogs, sizes)
def test_picking_does_not_depend_on_catalog_order(catalog: Catalog, size: Size) -> None:
    reversed_catalog = Catalog(catalog.name, tuple(reversed(catalog.flavors)))
    try:
        first = pick_flavor(catalog, size)
    except NoFlavorFits:
        with pytest.raises(NoFlavorFits):
            pick_flavor(reversed_catalog, size)
        return
    assert pick_flavor(reversed_catalog, size) == first
