"""Generate the demo hardware-store catalog and ESCI judgments (stdlib only, deterministic).

Products are built from product *types* (a title template plus attribute variants); the
judgments are derived from the same structure, so they agree with the catalog by construction:

    E (exact)       the queried product type with every queried attribute
    S (substitute)  the same type with other attributes, or a type that can stand in for it
    C (complement)  an accessory or part used together with the exact product
    I (irrelevant)  a product that shares words with the query but is the wrong thing

Run it from anywhere; it rewrites catalog.csv and judged_queries.csv next to this script:

    python examples/make_demo.py              # or: --out some/dir
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path

SEED = 20240611
MAX_PER_LABEL = {"E": 5, "S": 4, "C": 3, "I": 3}  # judged products per query: 6..15
MIN_JUDGED = 6

CATEGORY_PREFIX = {
    "Power Tools": "PT",
    "Hand Tools": "HT",
    "Paint": "PA",
    "Plumbing": "PL",
    "Lighting": "LI",
    "Electrical": "EL",
    "Flooring": "FL",
    "Garden": "GA",
    "Kitchen Appliances": "KA",
    "Fasteners": "FA",
    "Storage": "ST",
}

# Invented brands and their price level.
BRAND_PRICE = {
    "Torvane": 1.0,
    "Boltworth": 1.3,
    "Ruxley": 0.75,
    "Kelsmark": 1.0,
    "Ardley": 1.35,
    "Tintwell": 1.0,
    "Coatsmith": 1.25,
    "Aquavell": 1.0,
    "Halvard": 1.4,
    "Brightmoor": 1.0,
    "Duraplank": 1.0,
    "Fernhollow": 1.0,
    "Cookhaven": 1.0,
    "Gripton": 1.0,
}


@dataclass(frozen=True)
class ProductType:
    """A kind of product: every variant x brand combination becomes one catalog row."""

    key: str
    category: str
    brands: tuple[str, ...]
    title: str
    description: str
    price: float
    variants: tuple[dict[str, str], ...]
    per_variant: int = 1


@dataclass(frozen=True)
class Product:
    sku: str
    type_key: str
    attrs: dict[str, str]
    title: str
    brand: str
    category: str
    description: str
    price: float
    in_stock: bool


def axes(**values: list[str]) -> tuple[dict[str, str], ...]:
    """All combinations of attribute values.

    >>> axes(size=["S", "L"], color=["red"])
    ({'size': 'S', 'color': 'red'}, {'size': 'L', 'color': 'red'})
    """
    names = list(values)
    return tuple(dict(zip(names, combo)) for combo in itertools.product(*values.values()))


def kinds(*values: str) -> tuple[dict[str, str], ...]:
    """One attribute called ``kind``."""
    return tuple({"kind": value} for value in values)


def one() -> tuple[dict[str, str], ...]:
    """A type with a single variant."""
    return ({},)


def t(key: str, category: str, brands: str, title: str, description: str, price: float,
      variants: tuple[dict[str, str], ...], per_variant: int = 1) -> ProductType:
    """Shorthand for a ProductType; ``brands`` is space-separated and rotates over variants."""
    return ProductType(key, category, tuple(brands.split()), title, description, price,
                       variants, per_variant)


PT, HT, PA, PL = "Power Tools", "Hand Tools", "Paint", "Plumbing"
LI, EL, FL, GA = "Lighting", "Electrical", "Flooring", "Garden"
KA, FA, ST = "Kitchen Appliances", "Fasteners", "Storage"

TYPES: list[ProductType] = [
    # -- power tools ---------------------------------------------------------------------
    t("drill", PT, "Torvane Boltworth Ruxley", "{brand} {voltage} Cordless Drill/Driver {kit}",
      "Compact {voltage} drill/driver with a 1/2 in. keyless chuck, two speeds and an LED work "
      "light. Drills holes and drives screws in wood, metal and plastic.", 69,
      axes(voltage=["12V", "20V"], kit=["(Tool Only)", "Kit with 2 Batteries and Charger"]), 2),
    t("hammer_drill", PT, "Boltworth Torvane", "{brand} {power} 1/2 in. Hammer Drill",
      "Hammer mode bores into brick, block and concrete; switch to drill mode for wood and "
      "metal.", 99, axes(power=["7.5 Amp Corded", "20V Cordless"]), 2),
    t("impact_driver", PT, "Torvane Boltworth Ruxley",
      "{brand} {voltage} Cordless Impact Driver, 1/4 in. Hex (Tool Only)",
      "High-torque driver for long screws and lag bolts with a quick-release 1/4 in. hex "
      "chuck.", 79, axes(voltage=["12V", "20V"])),
    t("circular_saw", PT, "Torvane Boltworth", "{brand} 7-1/4 in. {power} Circular Saw",
      "Cuts 2x lumber in a single pass and bevels to 56 degrees. Includes a 24-tooth carbide "
      "blade.", 89, axes(power=["15 Amp Corded", "20V Cordless"]), 2),
    t("recip_saw", PT, "Boltworth Torvane", "{brand} {power} Reciprocating Saw",
      "Variable-speed demolition saw with a tool-free blade clamp for cutting wood, nails, "
      "metal and PVC pipe.", 99, axes(power=["12 Amp Corded", "20V Cordless"])),
    t("jigsaw", PT, "Torvane Ruxley", "{brand} {power} Jig Saw with Orbital Action",
      "Cuts curves and scrolls in wood, laminate and sheet metal with four orbital settings.",
      69, axes(power=["6.5 Amp Corded", "20V Cordless"])),
    t("sander", PT, "Torvane Boltworth", "{brand} 5 in. {power} Random Orbit Sander",
      "Hook-and-loop pad and dust bag for a smooth, swirl-free finish on wood.", 59,
      axes(power=["3 Amp Corded", "20V Cordless"])),
    t("grinder", PT, "Boltworth Ruxley", "{brand} 4-1/2 in. {power} Angle Grinder",
      "Grinds, cuts and polishes metal and masonry; side handle and adjustable guard "
      "included.", 59, axes(power=["7 Amp Corded", "20V Cordless"])),
    t("wet_dry_vac", PT, "Ruxley Torvane", "{brand} {size} Peak HP Wet/Dry Vacuum",
      "Picks up wet spills and dry debris in the garage or workshop; comes with a 7 ft. hose, "
      "crevice tool and cartridge filter.", 69,
      axes(size=["6 Gallon 3.5", "12 Gallon 5.0", "16 Gallon 6.5"])),
    t("vac_filter", PT, "Ruxley", "{brand} Replacement Cartridge Filter for 6-16 Gallon Wet/Dry "
      "Vacuums", "Pleated paper filter that traps fine dust; washable and reusable.", 14, one()),
    t("drill_bits", PT, "Boltworth Torvane Ruxley", "{brand} {set} Drill Bit Set",
      "Split-point bits for drilling {use}, packed in a labeled storage case.", 19, (
          {"set": "21-Piece Titanium", "use": "wood, plastic and mild steel"},
          {"set": "29-Piece Cobalt", "use": "stainless steel and other hard metals"},
          {"set": "10-Piece Carbide-Tipped Masonry", "use": "brick, block and concrete"},
      )),
    t("driver_bits", PT, "Boltworth Ruxley", "{brand} {n}-Piece Impact Driver Bit Set",
      "Impact-rated Phillips, square, Torx and hex bits with a magnetic bit holder.", 17,
      axes(n=["40", "100"])),
    t("battery", PT, "Torvane Boltworth Ruxley", "{brand} {pack}",
      "Fits all {brand} {voltage} tools; a fuel gauge shows the remaining charge.", 49, (
          {"pack": "12V 2.0Ah Lithium-Ion Battery", "voltage": "12V"},
          {"pack": "20V 4.0Ah Lithium-Ion Battery", "voltage": "20V"},
          {"pack": "20V 2.0Ah Lithium-Ion Battery (2-Pack)", "voltage": "20V"},
      )),
    t("circ_blade", PT, "Boltworth Ruxley", "{brand} 7-1/4 in. {blade} Circular Saw Blade",
      "Carbide-tipped blade for {use}; fits most 7-1/4 in. saws.", 12, (
          {"blade": "24-Tooth Framing", "use": "fast rip and cross cuts in lumber"},
          {"blade": "40-Tooth Finish", "use": "smooth cuts in plywood and trim"},
      )),
    t("recip_blades", PT, "Boltworth Torvane", "{brand} {n}-Piece Reciprocating Saw Blade Set",
      "Assorted wood and metal cutting blades with a universal shank.", 16,
      axes(n=["12"])),
    t("jigsaw_blades", PT, "Torvane", "{brand} T-Shank Jig Saw Blade Set (10-Piece)",
      "Blades for fast, clean and curved cuts in wood and metal.", 11, one()),
    t("sanding_discs", PT, "Ruxley Torvane",
      "{brand} 5 in. 8-Hole Hook and Loop Sanding Discs, {grit} Grit (50-Pack)",
      "Aluminum oxide discs for random orbit sanders.", 15, axes(grit=["60", "120", "220"])),
    t("cutoff_wheels", PT, "Boltworth", "{brand} 4-1/2 in. {kind}",
      "Fits 4-1/2 in. grinders with a 7/8 in. arbor.", 12,
      kinds("Metal Cut-Off Wheels (10-Pack)", "80 Grit Flap Discs (5-Pack)")),
    # -- hand tools ----------------------------------------------------------------------
    t("hammer", HT, "Kelsmark Ardley Ruxley", "{brand} {weight} {handle} Claw Hammer",
      "Smooth striking face and curved claw for pulling nails, with a {handle} handle and "
      "non-slip grip.", 14, axes(weight=["16 oz.", "20 oz."], handle=["Fiberglass", "Steel"])),
    t("screwdriver_set", HT, "Kelsmark Ardley Ruxley", "{brand} {set} Screwdriver Set",
      "Phillips and slotted screwdrivers with cushion-grip handles and magnetic tips.", 15,
      ({"set": "6-Piece"}, {"set": "10-Piece"}, {"set": "8-Piece Precision"})),
    t("multi_bit_screwdriver", HT, "Kelsmark Ruxley", "{brand} 11-in-1 Multi-Bit Screwdriver",
      "Stores its bits in the handle; includes nut drivers.", 12, one()),
    t("adj_wrench", HT, "Kelsmark Ardley", "{brand} {size} Adjustable Wrench",
      "Chrome vanadium steel with a wide-opening jaw and a laser-etched scale for nuts and "
      "bolts.", 12, axes(size=["6 in.", "8 in.", "10 in.", "12 in."])),
    t("wrench_set", HT, "Ardley Kelsmark",
      "{brand} {n}-Piece Combination Wrench Set, SAE and Metric",
      "Open-end and 12-point box-end wrenches in a roll-up pouch.", 29, axes(n=["14", "22"])),
    t("socket_set", HT, "Ardley Kelsmark", "{brand} {set} Drive Socket Set, SAE and Metric",
      "Chrome sockets, a 72-tooth ratchet and extensions in a blow-molded case.", 39, (
          {"set": "40-Piece 1/4 in."}, {"set": "86-Piece 3/8 in."},
          {"set": "120-Piece 1/4 in. and 3/8 in."},
      )),
    t("pliers", HT, "Kelsmark Ardley", "{brand} {kind} Pliers",
      "Forged steel jaws with cushion grips for gripping, bending and cutting.", 13,
      kinds("10 in. Tongue and Groove", "8 in. Long Nose", "8 in. Diagonal Cutting")),
    t("hex_keys", HT, "Kelsmark Ardley", "{brand} {kind} Hex Key Set, SAE and Metric",
      "Ball-end keys in a compact holder for furniture assembly, bikes and set screws.", 14,
      kinds("26-Piece L-Shape", "18-Piece T-Handle")),
    t("tape_measure", HT, "Kelsmark Ardley Ruxley", "{brand} {length} Tape Measure",
      "1 in. wide blade with a magnetic hook and belt clip.", 9,
      axes(length=["16 ft.", "25 ft.", "35 ft."])),
    t("level", HT, "Kelsmark Ardley", "{brand} {kind} Level",
      "Shock-resistant vials for plumb, level and 45-degree readings.", 12,
      kinds("9 in. Magnetic Torpedo", "24 in. Aluminum Box", "48 in. Aluminum Box")),
    t("laser_level", HT, "Ardley Kelsmark",
      "{brand} Self-Leveling Cross-Line Laser Level, 65 ft. Range",
      "Projects bright horizontal and vertical lines for hanging shelves, tile and cabinets.",
      79, one(), 2),
    t("laser_measure", HT, "Kelsmark", "{brand} 100 ft. Laser Distance Measure",
      "Measures distance, area and volume at the push of a button.", 39, one()),
    t("utility_knife", HT, "Kelsmark Ruxley", "{brand} Retractable Utility Knife with 5 Blades",
      "Tool-free blade change and a non-slip grip for cutting drywall, carpet and boxes.", 9,
      one(), 2),
    t("utility_blades", HT, "Kelsmark Ruxley", "{brand} Utility Knife Blades (100-Pack)",
      "Standard two-notch blades in a dispenser.", 12, one(), 2),
    t("pipe_wrench", HT, "Ardley Ruxley", "{brand} {size} Cast Iron Pipe Wrench",
      "Hook jaw and heel jaw grip round pipe and fittings.", 24,
      axes(size=["14 in.", "18 in."])),
    t("caulk_gun", HT, "Kelsmark", "{brand} Dripless Caulking Gun, 10 oz.",
      "Smooth-rod gun with a seal puncture tool and cutter.", 9, one()),
    # -- paint ---------------------------------------------------------------------------
    t("interior_paint", PA, "Tintwell Coatsmith",
      "{brand} Interior Paint and Primer, {color}, {finish}, 1 Gallon",
      "Low-odor, one-coat hide paint with built-in primer for walls and trim in a {finish} "
      "sheen.", 32, axes(finish=["Eggshell", "Satin", "Semi-Gloss"],
                         color=["Chalk White", "Harbor Gray", "Sage Leaf"])),
    t("exterior_paint", PA, "Coatsmith Tintwell", "{brand} Exterior Paint, {color}, {finish}, 1 "
      "Gallon", "Mildew-resistant acrylic for siding and trim that stands up to sun and rain.",
      39, axes(finish=["Flat", "Satin"], color=["Chalk White", "Barn Red"])),
    t("primer", PA, "Tintwell Coatsmith", "{brand} Interior/Exterior {kind}",
      "Seals porous surfaces before painting.", 16, kinds(
          "Stain-Blocking Primer, White, 1 Quart", "Stain-Blocking Primer, White, 1 Gallon",
          "Bonding Primer, White, 1 Gallon")),
    t("spray_paint", PA, "Tintwell Ruxley", "{brand} {color} Spray Paint, 12 oz.",
      "Fast-drying enamel for metal, wood and plastic, indoors or out.", 6, axes(color=[
          "Gloss Black", "Matte Black", "Flat White", "Gloss Safety Red",
          "Satin Oil-Rubbed Bronze", "Metallic Brushed Nickel"])),
    t("wood_stain", PA, "Coatsmith", "{brand} Oil-Based Interior Wood Stain, {color}, 1 Quart",
      "Penetrates bare wood to bring out the grain in one coat.", 12,
      axes(color=["Golden Oak", "Dark Walnut", "Espresso"])),
    t("deck_stain", PA, "Coatsmith Tintwell",
      "{brand} Semi-Transparent Exterior Deck Stain, {color}, 1 Gallon",
      "Waterproofing stain for decks, fences and siding.", 34,
      axes(color=["Cedar", "Redwood", "Slate Gray"])),
    t("roller_kit", PA, "Ruxley Tintwell", "{brand} {kit} 9 in. Paint Roller Kit with Tray",
      "Everything needed to roll a room: frame, 3/8 in. nap cover and tray.", 11,
      axes(kit=["3-Piece", "7-Piece"])),
    t("roller_covers", PA, "Tintwell", "{brand} 9 in. x {nap} Nap Roller Covers (3-Pack)",
      "Woven covers for smooth to semi-smooth walls and ceilings.", 10,
      axes(nap=["3/8 in.", "1/2 in."])),
    t("brush", PA, "Coatsmith Ruxley", "{brand} {kind} Paint Brush",
      "Nylon-polyester bristles for latex and oil paints.", 8,
      kinds("2 in. Angled Sash", "2-1/2 in. Angled Sash", "3 in. Flat")),
    t("brush_set", PA, "Ruxley", "{brand} 5-Piece Paint Brush Set",
      "Flat and angled brushes for walls, trim and touch-ups.", 13, one()),
    t("painters_tape", PA, "Tintwell Ruxley", "{brand} Blue Painter's Tape, 1.88 in. x 60 yd. "
      "({n}-Pack)", "Removes cleanly for up to 14 days and gives sharp paint lines.", 7,
      axes(n=["1", "3"])),
    t("drop_cloth", PA, "Ruxley", "{brand} 9 ft. x 12 ft. {kind}",
      "Protects floors and furniture while painting.", 12,
      kinds("Canvas Drop Cloth", "Plastic Drop Cloth (3-Pack)")),
    t("caulk", PA, "Tintwell Coatsmith", "{brand} {kind}, 10.1 oz.",
      "Flexible, waterproof seal for gaps and joints.", 5, kinds(
          "Paintable Acrylic Latex Caulk, White", "100% Silicone Kitchen and Bath Sealant, "
          "Clear", "100% Silicone Kitchen and Bath Sealant, White")),
    t("spackle", PA, "Tintwell Ruxley", "{brand} Lightweight Spackling Compound, 1 Quart",
      "Fills nail holes, dents and cracks in drywall; no shrinking or cracking.", 8, one()),
    t("wall_patch", PA, "Ruxley", "{brand} 4 in. x 4 in. Self-Adhesive Drywall Repair Patch",
      "Aluminum mesh patch for covering holes in walls and ceilings.", 5, one()),
    t("putty_knife", PA, "Kelsmark", "{brand} {size} Flexible Putty Knife",
      "Stainless blade for applying filler and scraping.", 6,
      axes(size=["1-1/2 in.", "3 in."])),
    # -- plumbing ------------------------------------------------------------------------
    t("kitchen_faucet", PL, "Aquavell Halvard", "{brand} {style} Kitchen Faucet in {finish}",
      "Ceramic disc valve and spot-resistant {finish} finish; installs in one or three holes.",
      129, axes(style=["Single-Handle Pull-Down", "Two-Handle Side-Spray"],
                finish=["Chrome", "Stainless Steel", "Brushed Nickel", "Matte Black"])),
    t("bath_faucet", PL, "Aquavell Halvard Ruxley", "{brand} {style} Bathroom Faucet in {finish}",
      "Drip-free ceramic cartridge; pop-up drain assembly included.", 59, (
          {"style": "4 in. Centerset 2-Handle", "finish": "Chrome"},
          {"style": "4 in. Centerset 2-Handle", "finish": "Brushed Nickel"},
          {"style": "4 in. Centerset 2-Handle", "finish": "Oil-Rubbed Bronze"},
          {"style": "Single-Hole Single-Handle", "finish": "Matte Black"},
          {"style": "Single-Hole Single-Handle", "finish": "Brushed Nickel"},
          {"style": "8 in. Widespread 2-Handle", "finish": "Chrome"},
          {"style": "8 in. Widespread 2-Handle", "finish": "Matte Black"},
      )),
    t("shower_head", PL, "Aquavell Halvard", "{brand} {style} Shower Head in {finish}",
      "Water-saving 1.8 GPM spray with easy-clean rubber nozzles.", 39,
      axes(style=["8 in. Rain", "5-Spray Handheld"],
           finish=["Chrome", "Brushed Nickel", "Matte Black"])),
    t("toilet", PL, "Aquavell Halvard Ruxley",
      "{brand} Two-Piece {shape} Comfort Height Toilet, 1.28 GPF, White",
      "Powerful single flush that saves water; seat and wax ring sold separately.", 189,
      axes(shape=["Round", "Elongated"])),
    t("toilet_seat", PL, "Aquavell Ruxley", "{brand} {shape} Slow-Close Toilet Seat, White",
      "Hinges lower the lid quietly; lifts off for cleaning.", 29,
      axes(shape=["Round", "Elongated"])),
    t("flapper", PL, "Aquavell", "{brand} {size} Universal Toilet Flapper",
      "Stops running water and leaks; fits most toilets.", 6, axes(size=["2 in.", "3 in."])),
    t("fill_valve", PL, "Aquavell", "{brand} Universal Toilet Fill Valve",
      "Adjustable-height valve that refills the tank quickly and quietly.", 11, one()),
    t("wax_ring", PL, "Ruxley", "{brand} Toilet Wax Ring with Plastic Flange",
      "Seals the toilet to the floor drain.", 5, one()),
    t("toilet_repair_kit", PL, "Aquavell", "{brand} Complete Toilet Repair Kit, 2 in. Flush Valve",
      "Fill valve, flapper and tank-to-bowl hardware in one box.", 24, one()),
    t("supply_line", PL, "Aquavell", "{brand} {dims} Braided Stainless Steel {use} Supply Line",
      "Burst-resistant connector for a leak-free hookup.", 8, (
          {"use": "Faucet", "dims": "3/8 in. Compression x 1/2 in. FIP x 20 in."},
          {"use": "Toilet", "dims": "3/8 in. Compression x 7/8 in. Ballcock x 12 in."},
          {"use": "Dishwasher", "dims": "3/8 in. Compression x 3/8 in. Compression x 60 in."},
      )),
    t("shutoff_valve", PL, "Aquavell",
      "{brand} 1/2 in. FIP x 3/8 in. Compression Quarter-Turn Angle Stop Valve",
      "Turns off water to a single fixture.", 9, one()),
    t("p_trap", PL, "Ruxley", "{brand} 1-1/2 in. PVC Sink P-Trap Kit",
      "Slip-joint trap for kitchen and bathroom sink drains.", 7, one()),
    t("pex", PL, "Aquavell", "{brand} 1/2 in. x 100 ft. PEX-B Pipe, {color}",
      "Flexible pipe for hot and cold water supply lines.", 34,
      axes(color=["Red", "Blue", "White"])),
    t("pex_fittings", PL, "Aquavell", "{brand} {kind}", "For crimp-style PEX connections.", 12,
      kinds("1/2 in. Copper PEX Crimp Rings (25-Pack)", "1/2 in. PEX Crimp Tool")),
    t("disposal", PL, "Aquavell Halvard", "{brand} {hp} HP Continuous Feed Garbage Disposal",
      "Grinds food waste with stainless grinding components; power cord sold separately.", 109,
      axes(hp=["1/3", "1/2", "3/4"])),
    t("plunger", PL, "Ruxley", "{brand} {kind} Plunger", "Clears clogged drains.", 8,
      kinds("Heavy-Duty Flanged Toilet", "Sink and Drain Cup")),
    t("drain_auger", PL, "Ruxley Aquavell", "{brand} {kind}",
      "Clears hair and clogs from sink, tub and shower drains.", 14,
      kinds("25 ft. Drain Auger with 1/4 in. Cable", "18 in. Plastic Drain Cleaning Tool "
            "(3-Pack)")),
    # -- lighting ------------------------------------------------------------------------
    t("led_bulb", LI, "Brightmoor Ruxley", "{brand} {model} LED Light Bulb, {color} ({pack}-Pack)",
      "Dimmable, long-life bulb that uses a fraction of the energy of incandescent.", 10, (
          {"model": "60W Equivalent A19", "color": "Soft White 2700K", "pack": "8"},
          {"model": "60W Equivalent A19", "color": "Daylight 5000K", "pack": "8"},
          {"model": "100W Equivalent A19", "color": "Soft White 2700K", "pack": "4"},
          {"model": "100W Equivalent A19", "color": "Daylight 5000K", "pack": "4"},
          {"model": "65W Equivalent BR30 Flood", "color": "Soft White 2700K", "pack": "6"},
          {"model": "65W Equivalent BR30 Flood", "color": "Daylight 5000K", "pack": "6"},
      )),
    t("filament_bulb", LI, "Brightmoor", "{brand} 40W Equivalent {shape} Vintage Filament LED "
      "Bulb, Amber Glass (4-Pack)", "Exposed-filament look with a warm 2200K glow; dimmable.",
      14, axes(shape=["ST19", "G25 Globe"])),
    t("ceiling_fan", LI, "Brightmoor Ruxley", "{brand} {size} {location} Ceiling Fan{light} in "
      "{finish}", "Reversible motor with a pull-chain or remote control; {blades}.", 119, (
          {"size": "44 in.", "location": "Indoor", "light": " with LED Light Kit",
           "has_light": "yes", "finish": "White", "blades": "five reversible blades"},
          {"size": "44 in.", "location": "Indoor", "light": "", "has_light": "no",
           "finish": "Brushed Nickel", "blades": "five reversible blades"},
          {"size": "52 in.", "location": "Indoor", "light": " with LED Light Kit",
           "has_light": "yes", "finish": "Brushed Nickel", "blades": "five walnut-finish blades"},
          {"size": "52 in.", "location": "Indoor", "light": " with LED Light Kit",
           "has_light": "yes", "finish": "Matte Black", "blades": "five black blades"},
          {"size": "52 in.", "location": "Indoor", "light": "", "has_light": "no",
           "finish": "Matte Black", "blades": "five black blades"},
          {"size": "52 in.", "location": "Indoor/Outdoor", "light": " with LED Light Kit",
           "has_light": "yes", "finish": "Oil-Rubbed Bronze", "blades": "damp-rated blades"},
          {"size": "60 in.", "location": "Indoor/Outdoor", "light": "", "has_light": "no",
           "finish": "Matte Black", "blades": "damp-rated blades"},
          {"size": "60 in.", "location": "Indoor", "light": " with LED Light Kit",
           "has_light": "yes", "finish": "Brushed Nickel", "blades": "five reversible blades"},
      )),
    t("fan_light_kit", LI, "Brightmoor", "{brand} Universal LED Light Kit for Ceiling Fans, "
      "{finish}", "Adds a dimmable light to a fan with a switch housing cap.", 34,
      axes(finish=["White", "Brushed Nickel", "Matte Black"])),
    t("flush_mount", LI, "Brightmoor Ruxley", "{brand} 13 in. LED Flush Mount Ceiling Light, "
      "{finish}", "Low-profile fixture for hallways, closets and bedrooms.", 29,
      axes(finish=["White", "Brushed Nickel", "Matte Black"])),
    t("recessed", LI, "Brightmoor Ruxley", "{brand} {size} Canless LED Recessed Light, Color "
      "Selectable (6-Pack)", "Ultra-thin wafer lights install from below the ceiling with a "
      "junction box; no housing needed.", 49, axes(size=["4 in.", "6 in."])),
    t("vanity_light", LI, "Brightmoor", "{brand} {n}-Light Bathroom Vanity Light in {finish}",
      "Wall fixture with frosted glass shades for over the mirror.", 59,
      axes(n=["3", "4"], finish=["Brushed Nickel", "Matte Black"])),
    t("pendant", LI, "Brightmoor", "{brand} 1-Light Pendant with {shade} Shade, {finish}",
      "Adjustable cord hangs over a kitchen island or dining table.", 49, (
          {"shade": "Clear Glass", "finish": "Matte Black"},
          {"shade": "Seeded Glass", "finish": "Brushed Nickel"},
          {"shade": "Metal Dome", "finish": "Matte Black"},
      )),
    t("under_cabinet", LI, "Brightmoor", "{brand} {length} Plug-In LED Under Cabinet Light Bar",
      "Slim bar with an on/off switch lights up countertops.", 19,
      axes(length=["12 in.", "18 in.", "24 in."])),
    t("shop_light", LI, "Brightmoor Ruxley", "{brand} 4 ft. Linkable LED Shop Light, 5000 Lumens",
      "Hangs from chains or mounts flat in garages, basements and workshops.", 29, one(), 2),
    t("outdoor_lantern", LI, "Brightmoor", "{brand} Outdoor Wall Lantern with Dusk-to-Dawn "
      "Sensor, {finish}", "Weather-resistant fixture for porches and entries.", 39,
      axes(finish=["Matte Black", "Bronze"])),
    t("flood_light", LI, "Brightmoor", "{brand} Motion-Activated LED Security Flood Light, "
      "{finish}", "Twin adjustable heads light driveways and yards when motion is detected.",
      44, axes(finish=["White", "Bronze"])),
    t("string_lights", LI, "Brightmoor", "{brand} 48 ft. Outdoor String Lights with 15 "
      "Shatterproof S14 Bulbs", "Weatherproof strand for patios and backyards.", 36, one()),
    # -- electrical ----------------------------------------------------------------------
    t("extension_cord", EL, "Brightmoor Ruxley", "{brand} {length} {gauge} {kind} Extension Cord"
      ", {color}", "Flexible vinyl jacket with a lighted end; rated {rating}.", 19, (
          {"length": "25 ft.", "gauge": "16/3", "kind": "Outdoor", "color": "Orange",
           "rating": "13 amps"},
          {"length": "50 ft.", "gauge": "14/3", "kind": "Outdoor", "color": "Green",
           "rating": "15 amps"},
          {"length": "100 ft.", "gauge": "12/3", "kind": "Outdoor", "color": "Yellow",
           "rating": "15 amps"},
          {"length": "9 ft.", "gauge": "16/3", "kind": "3-Outlet Indoor", "color": "White",
           "rating": "13 amps"},
      )),
    t("outlet", EL, "Brightmoor", "{brand} {kind}", "Tamper-resistant, UL listed receptacle.",
      9, kinds("15 Amp Duplex Outlet, White (10-Pack)", "20 Amp GFCI Outlet, White",
               "15 Amp USB Charger Outlet with Type-A and Type-C Ports, White")),
    t("switch", EL, "Brightmoor", "{brand} {kind}", "Fits standard decorator wall plates.", 12,
      kinds("Single-Pole Decorator Light Switch, White (10-Pack)",
            "LED Dimmer Switch, Single-Pole/3-Way, White", "Smart Wi-Fi Light Switch, "
            "Single-Pole, White")),
    t("wall_plate", EL, "Brightmoor", "{brand} 1-Gang Decorator Wall Plate, {color} (5-Pack)",
      "Screwless snap-on plate for switches and outlets.", 7, axes(color=["White", "Black"])),
    t("surge", EL, "Brightmoor Ruxley", "{brand} {n}-Outlet Surge Protector Power Strip, 6 ft. "
      "Cord", "Protects electronics from power spikes; 2100 joules.", 17, axes(n=["6", "8"])),
    t("smart_plug", EL, "Brightmoor", "{brand} Smart Wi-Fi Plug, 15 Amp (2-Pack)",
      "Control lamps and small appliances from your phone or by voice.", 19, one()),
    t("wire", EL, "Ruxley", "{brand} {size} NM-B Indoor Electrical Wire with Ground",
      "Non-metallic sheathed copper cable for branch circuits.", 39, (
          {"size": "14/2 x 50 ft."}, {"size": "12/2 x 50 ft."}, {"size": "14/2 x 250 ft."},
      )),
    t("wire_connectors", EL, "Ruxley", "{brand} Twist-On Wire Connectors, Assorted (100-Pack)",
      "Color-coded connectors for joining copper conductors.", 8, one()),
    t("electrical_tape", EL, "Ruxley", "{brand} 3/4 in. x 60 ft. Vinyl Electrical Tape, Black "
      "(3-Pack)", "Insulates splices up to 600 volts.", 6, one()),
    t("voltage_tester", EL, "Brightmoor", "{brand} Non-Contact Voltage Tester, 12-1000V",
      "Beeps and lights up near live wires and outlets.", 19, one()),
    t("junction_box", EL, "Ruxley", "{brand} 1-Gang Old Work PVC Electrical Box",
      "Mounts in existing drywall with swing-out tabs.", 3, one()),
    # -- flooring ------------------------------------------------------------------------
    t("vinyl_plank", FL, "Duraplank Ruxley", "{brand} {color} {thickness} Waterproof Luxury "
      "Vinyl Plank Flooring (20 sq. ft./case)", "Click-lock planks with an attached pad for "
      "kitchens, baths and basements.", 42, axes(
          color=["Coastal Oak", "Smoked Hickory", "Gray Ash", "Natural Maple"],
          thickness=["6 mm", "8 mm"])),
    t("laminate", FL, "Duraplank", "{brand} {color} 12 mm Laminate Flooring, AC4 (16 sq. ft./"
      "case)", "Scratch-resistant wood-look planks with a click-lock install.", 36,
      axes(color=["Rustic Oak", "Weathered Gray", "Honey Pine"])),
    t("hardwood", FL, "Duraplank", "{brand} {species} {color} 3/8 in. Engineered Hardwood "
      "Flooring (22 sq. ft./case)", "Real wood veneer over a stable plywood core.", 89, (
          {"species": "White Oak", "color": "Natural"},
          {"species": "Hickory", "color": "Saddle"},
      )),
    t("porcelain_tile", FL, "Duraplank", "{brand} 12 in. x 24 in. {look} Matte Porcelain Floor "
      "and Wall Tile (14 sq. ft./case)", "Frost-resistant, rectified edges.", 29,
      axes(look=["Carrara Marble Look", "Slate Gray", "Warm Beige"])),
    t("wood_look_tile", FL, "Duraplank", "{brand} 6 in. x 36 in. {color} Wood Look Porcelain Tile"
      " (14 sq. ft./case)", "The look of hardwood with the durability of tile.", 32,
      axes(color=["Ash Gray", "Chestnut"])),
    t("subway_tile", FL, "Duraplank", "{brand} 3 in. x 6 in. Glossy Ceramic Subway Wall Tile, "
      "{color} (10 sq. ft./case)", "Classic backsplash and shower wall tile.", 19,
      axes(color=["White", "Sage Green", "Navy"])),
    t("underlayment", FL, "Duraplank Ruxley", "{brand} 2 mm Foam Flooring Underlayment with "
      "Vapor Barrier, 100 sq. ft.", "Cushions floating floors and reduces noise.", 24, one(), 2),
    t("thinset", FL, "Ruxley", "{brand} 50 lb. Modified Thinset Mortar, {color}",
      "Polymer-modified mortar for setting floor and wall tile.", 21,
      axes(color=["Gray", "White"])),
    t("grout", FL, "Duraplank", "{brand} 10 lb. Sanded Tile Grout, {color}",
      "For joints 1/8 in. and wider; mix with water.", 15,
      axes(color=["Bright White", "Pewter", "Charcoal"])),
    t("tile_spacers", FL, "Ruxley", "{brand} 1/8 in. Tile Spacers (250-Pack)",
      "Keeps grout lines even.", 4, one()),
    t("trowel", FL, "Kelsmark", "{brand} 1/4 in. x 3/8 in. Square-Notch Trowel",
      "Spreads mortar for tile up to 16 in.", 9, one()),
    t("transition", FL, "Duraplank", "{brand} 72 in. T-Molding Transition Strip, {color}",
      "Covers the gap between two floors of the same height.", 27,
      axes(color=["Coastal Oak", "Gray Ash"])),
    t("carpet_tile", FL, "Ruxley", "{brand} 24 in. x 24 in. Peel and Stick Carpet Tile, {color} "
      "(10-Pack)", "Easy DIY carpet for basements and playrooms.", 39,
      axes(color=["Charcoal", "Beige"])),
    t("tile_cutter", FL, "Kelsmark", "{brand} 24 in. Manual Tile Cutter",
      "Scores and snaps ceramic and porcelain tile.", 49, one()),
    t("tile_saw", FL, "Torvane", "{brand} 7 in. Wet Tile Saw, 4.8 Amp",
      "Water-cooled diamond blade for chip-free cuts in tile and stone.", 99, one()),
    # -- garden --------------------------------------------------------------------------
    t("string_trimmer", GA, "Torvane Fernhollow Ruxley", "{brand} {power} {cut} String Trimmer",
      "Bump-feed head with dual 0.080 in. line trims grass along fences, walks and beds.",
      89, (
          {"power": "20V Cordless", "cut": "12 in."},
          {"power": "40V Cordless", "cut": "15 in."},
          {"power": "25cc 2-Cycle Gas", "cut": "17 in. Curved Shaft"},
      ), 2),
    t("trimmer_line", GA, "Fernhollow", "{brand} 0.080 in. x {length} Twisted Trimmer Line",
      "Quiet, tough line that fits most trimmer heads.", 9,
      axes(length=["200 ft.", "500 ft."])),
    t("trimmer_spool", GA, "Torvane", "{brand} Replacement Trimmer Spool, 0.065 in. (3-Pack)",
      "Pre-wound spools for {brand} cordless trimmers.", 12, one()),
    t("lawn_mower", GA, "Torvane Fernhollow", "{brand} {deck} {power} {drive} Lawn Mower",
      "Mulches, bags or side-discharges clippings; {note}.", 279, (
          {"deck": "16 in.", "power": "20V Cordless", "drive": "Push",
           "note": "folds flat for storage"},
          {"deck": "21 in.", "power": "40V Cordless", "drive": "Push",
           "note": "quiet and no gas or oil"},
          {"deck": "21 in.", "power": "40V Cordless", "drive": "Self-Propelled",
           "note": "quiet and no gas or oil"},
          {"deck": "21 in.", "power": "140cc Gas", "drive": "Push", "note": "easy pull start"},
          {"deck": "21 in.", "power": "170cc Gas", "drive": "Self-Propelled",
           "note": "easy pull start"},
      )),
    t("leaf_blower", GA, "Torvane Ruxley", "{brand} {power} Leaf Blower",
      "Clears leaves and grass clippings from lawns, decks and driveways.", 99, (
          {"power": "20V Cordless Handheld"}, {"power": "40V Cordless Handheld"},
          {"power": "25cc Gas Handheld"}, {"power": "43cc Gas Backpack"},
      )),
    t("hedge_trimmer", GA, "Torvane", "{brand} 22 in. {power} Hedge Trimmer",
      "Dual-action blades cut branches up to 3/4 in. thick.", 79,
      axes(power=["4 Amp Corded", "20V Cordless"])),
    t("garden_hose", GA, "Fernhollow", "{brand} 5/8 in. x {length} {material} Garden Hose",
      "Crush-proof brass couplings; stays flexible in cold weather.", 29,
      axes(length=["50 ft.", "100 ft."], material=["Rubber", "Hybrid Polymer"])),
    t("hose_nozzle", GA, "Fernhollow", "{brand} 8-Pattern Metal Hose Nozzle",
      "Thumb-control sprayer for watering and washing.", 9, one()),
    t("hose_reel", GA, "Fernhollow", "{brand} Wall-Mount Hose Reel, Holds 150 ft.",
      "Keeps a garden hose tangle-free.", 39, one()),
    t("sprinkler", GA, "Fernhollow", "{brand} {kind} Lawn Sprinkler",
      "Adjustable coverage for lawns and gardens.", 19, kinds("Oscillating", "Impact")),
    t("pruner", GA, "Fernhollow", "{brand} {kind}", "Sharp steel blades for clean cuts on live "
      "plants.", 17, kinds("Bypass Pruning Shears, 3/4 in. Cut", "32 in. Bypass Lopper",
                          "Hedge Shears, 8 in. Blades")),
    t("shovel", GA, "Fernhollow Ruxley", "{brand} {kind}", "Tempered steel head for digging, "
      "planting and moving soil.", 24, kinds(
          "Round Point Shovel, 48 in. Fiberglass Handle", "Square Point Shovel, 48 in. Wood "
          "Handle", "Garden Spade, 30 in. D-Handle", "24 in. Steel Leaf Rake")),
    t("wheelbarrow", GA, "Fernhollow", "{brand} {cap} cu. ft. Steel Wheelbarrow, Flat-Free Tire",
      "Hauls soil, mulch and gravel.", 89, axes(cap=["6", "8"])),
    t("raised_bed", GA, "Fernhollow", "{brand} {kind} Raised Garden Bed",
      "Grow vegetables and flowers at a comfortable height.", 69,
      kinds("4 ft. x 4 ft. x 11 in. Cedar", "2 ft. x 8 ft. Galvanized Metal")),
    t("soil", GA, "Fernhollow", "{brand} {kind}", "For healthy plants, lawns and gardens.", 9,
      kinds("Potting Mix, 1.5 cu. ft.", "Raised Bed Soil, 1.5 cu. ft.",
            "Brown Mulch, 2 cu. ft.", "Sun and Shade Grass Seed, 7 lb.")),
    t("gloves", GA, "Fernhollow", "{brand} Nitrile-Coated Garden Gloves, Medium (3-Pair)",
      "Breathable gloves with a grippy palm.", 9, one()),
    # -- kitchen appliances ---------------------------------------------------------------
    t("microwave", KA, "Cookhaven Halvard", "{brand} {size} cu. ft. {style} Microwave in {finish}",
      "Sensor cooking, a turntable and one-touch presets.", 249, (
          {"size": "1.9", "style": "Over-the-Range", "finish": "Stainless Steel"},
          {"size": "1.9", "style": "Over-the-Range", "finish": "Black"},
          {"size": "1.9", "style": "Over-the-Range", "finish": "White"},
          {"size": "1.1", "style": "Countertop", "finish": "Stainless Steel"},
          {"size": "1.1", "style": "Countertop", "finish": "White"},
      )),
    t("refrigerator", KA, "Cookhaven Halvard", "{brand} {size} cu. ft. {style} Refrigerator in "
      "{finish}", "{note}.", 1499, (
          {"size": "25.5", "style": "French Door", "finish": "Stainless Steel",
           "note": "Ice maker, water dispenser and humidity-controlled crispers"},
          {"size": "25.5", "style": "French Door", "finish": "Black Stainless Steel",
           "note": "Ice maker, water dispenser and humidity-controlled crispers"},
          {"size": "22", "style": "Side-by-Side", "finish": "Stainless Steel",
           "note": "Through-the-door ice and water with adjustable glass shelves"},
          {"size": "18", "style": "Top Freezer", "finish": "White",
           "note": "Energy-efficient with adjustable wire shelves"},
          {"size": "18", "style": "Top Freezer", "finish": "Stainless Steel",
           "note": "Energy-efficient with adjustable wire shelves"},
          {"size": "4.4", "style": "Compact", "finish": "Black",
           "note": "Fits under a counter in dorms, offices and bars"},
      )),
    t("dishwasher", KA, "Cookhaven Halvard", "{brand} 24 in. Built-In Dishwasher, {tub} Tub, "
      "{dba} dBA, {finish}", "Third rack and a hard-food disposer; Energy Star certified.", 549, (
          {"tub": "Stainless Steel", "dba": "44", "finish": "Stainless Steel"},
          {"tub": "Stainless Steel", "dba": "44", "finish": "Black Stainless Steel"},
          {"tub": "Plastic", "dba": "52", "finish": "White"},
          {"tub": "Plastic", "dba": "52", "finish": "Stainless Steel"},
      )),
    t("range", KA, "Cookhaven Halvard", "{brand} 30 in. {fuel} Range, {oven} cu. ft. Oven, "
      "{finish}", "Freestanding with a self-cleaning oven and {top}.", 749, (
          {"fuel": "Electric Smooth-Top", "oven": "5.3", "finish": "Stainless Steel",
           "top": "a ceramic glass cooktop"},
          {"fuel": "Electric Smooth-Top", "oven": "5.3", "finish": "White",
           "top": "a ceramic glass cooktop"},
          {"fuel": "Electric Coil", "oven": "4.8", "finish": "White",
           "top": "four coil elements"},
          {"fuel": "Gas", "oven": "5.0", "finish": "Stainless Steel",
           "top": "five sealed burners"},
          {"fuel": "Gas", "oven": "5.0", "finish": "Black", "top": "five sealed burners"},
      )),
    t("range_hood", KA, "Cookhaven", "{brand} 30 in. Under Cabinet Range Hood, 300 CFM, {finish}",
      "Ducted or ductless venting with LED lights.", 99,
      axes(finish=["Stainless Steel", "Black"])),
    t("water_filter", KA, "Cookhaven Halvard", "{brand} Refrigerator Water Filter, Fits {brand} "
      "French Door and Side-by-Side Models ({n}-Pack)", "Reduces chlorine taste and odor; "
      "replace every 6 months.", 39, axes(n=["1", "3"])),
    t("dw_install_kit", KA, "Cookhaven", "{brand} Dishwasher Installation Kit with 6 ft. Braided "
      "Supply Line", "Power cord, 90-degree elbow and supply line.", 24, one()),
    t("range_cord", KA, "Cookhaven", "{brand} 6 ft. 4-Prong 40 Amp Electric Range Cord",
      "Connects an electric range to the wall receptacle.", 24, one()),
    t("gas_connector", KA, "Cookhaven", "{brand} 48 in. Gas Range Connector Kit",
      "Flexible stainless steel line with fittings for a gas range.", 29, one()),
    t("chest_freezer", KA, "Cookhaven", "{brand} {size} cu. ft. Chest Freezer, White",
      "Manual defrost with a removable storage basket.", 199, axes(size=["5.0", "7.0"])),
    # -- fasteners -----------------------------------------------------------------------
    t("wood_screws", FA, "Gripton Boltworth", "{brand} #8 x {length} Phillips Flat-Head Wood "
      "Screws, Zinc-Plated (100-Pack)", "Sharp point and coarse threads for fast driving in "
      "wood.", 6, axes(length=["1-1/4 in.", "2 in.", "3 in."])),
    t("deck_screws", FA, "Gripton", "{brand} #9 x {length} Star Drive Exterior Deck Screws, "
      "Tan Coated, 5 lb. Box", "Coated to resist corrosion in treated lumber.", 34,
      axes(length=["2-1/2 in.", "3 in."])),
    t("drywall_screws", FA, "Gripton Ruxley", "{brand} #6 x {length} Coarse Thread Drywall "
      "Screws, 1 lb. Box", "Bugle head seats below the surface of gypsum board.", 8,
      axes(length=["1-1/4 in.", "1-5/8 in."])),
    t("masonry_screws", FA, "Boltworth", "{brand} 3/16 in. x {length} Blue Hex-Head Concrete "
      "Screws (100-Pack)", "Anchors to concrete, brick and block; drill a pilot hole first.",
      22, axes(length=["1-3/4 in.", "2-3/4 in."])),
    t("nails", FA, "Gripton", "{brand} {kind}", "For framing, trim and general carpentry.", 9,
      kinds("16d x 3-1/2 in. Bright Common Nails, 5 lb.",
            "8d x 2-1/2 in. Hot-Dip Galvanized Common Nails, 1 lb.",
            "1-1/4 in. 18-Gauge Brad Nails (2,000-Pack)",
            "2 in. 18-Gauge Brad Nails (2,000-Pack)")),
    t("anchors", FA, "Gripton", "{brand} {kind}", "Holds shelves, mirrors and pictures in "
      "drywall and plaster.", 7, kinds(
          "#8 Ribbed Plastic Wall Anchors with Screws (100-Pack)",
          "#8 Self-Drilling Drywall Anchors with Screws (50-Pack)",
          "1/8 in. Hollow Wall Anchors, Short (20-Pack)",
          "1/4 in. Spring Toggle Bolts (10-Pack)")),
    t("hex_bolts", FA, "Gripton Boltworth", "{brand} {size} Zinc-Plated Hex Bolts (10-Pack)",
      "Coarse thread, grade 2 steel.", 6,
      axes(size=["1/4 in. x 2 in.", "3/8 in. x 3 in.", "1/2 in. x 4 in."])),
    t("nuts_washers", FA, "Gripton", "{brand} {kind}", "Zinc-plated steel hardware.", 5,
      kinds("3/8 in. Hex Nuts (50-Pack)", "3/8 in. Flat Washers (50-Pack)")),
    t("lag_screws", FA, "Gripton", "{brand} 3/8 in. x 4 in. Hot-Dip Galvanized Hex Lag Screws "
      "(25-Pack)", "Heavy-duty fastening of ledgers and posts.", 16, one()),
    t("picture_kit", FA, "Gripton", "{brand} Picture Hanging Kit with Hooks, Nails and Wire "
      "(217-Piece)", "Hangs frames and mirrors up to 100 lb.", 11, one()),
    # -- storage -------------------------------------------------------------------------
    t("tool_chest", ST, "Ardley Kelsmark", "{brand} {width} {drawers} Rolling Tool Cabinet, "
      "{color}", "Ball-bearing drawer slides, a keyed lock and 5 in. casters.", 299, (
          {"width": "26 in.", "drawers": "5-Drawer", "color": "Red"},
          {"width": "26 in.", "drawers": "5-Drawer", "color": "Black"},
          {"width": "41 in.", "drawers": "9-Drawer", "color": "Red"},
          {"width": "41 in.", "drawers": "9-Drawer", "color": "Black"},
      )),
    t("tool_box", ST, "Kelsmark Ruxley", "{brand} {kind}", "Carries hand tools and small parts.",
      24, kinds("19 in. Plastic Tool Box with Removable Tray", "22 in. Rolling Tool Box",
                "16 in. Steel Tool Box")),
    t("tool_bag", ST, "Kelsmark", "{brand} 16 in. Open-Top Tool Bag with 20 Pockets",
      "Rugged polyester bag with a padded shoulder strap.", 29, one()),
    t("shelving", ST, "Kelsmark Ruxley", "{brand} {kind}", "Each shelf holds up to {load} lb.; "
      "assembles without tools.", 79, (
          {"kind": "5-Tier Steel Garage Shelving Unit, 48 in. W x 72 in. H", "load": "350"},
          {"kind": "5-Tier Boltless Steel Shelving Unit, 36 in. W x 72 in. H", "load": "250"},
          {"kind": "4-Tier Plastic Shelving Unit, 36 in. W x 54 in. H", "load": "100"},
      )),
    t("tote", ST, "Ruxley", "{brand} {kind}", "Stackable storage for the garage, attic or "
      "closet.", 12, kinds("27 Gal. Storage Tote with Snap Lid, Black/Yellow",
                          "18 Gal. Clear Storage Tote with Latching Lid",
                          "12 Gal. Storage Tote with Lid, Gray (4-Pack)",
                          "66 qt. Clear Latching Storage Bin (6-Pack)")),
    t("parts_organizer", ST, "Kelsmark", "{brand} 39-Drawer Small Parts Organizer",
      "Wall-mount or benchtop cabinet for screws, nails and beads.", 24, one()),
    t("pegboard", ST, "Kelsmark", "{brand} 48 in. x 24 in. Metal Pegboard Panel, Black",
      "Organizes tools on a garage or workshop wall.", 34, one()),
    t("pegboard_hooks", ST, "Kelsmark Ruxley", "{brand} Pegboard Hook Assortment (50-Piece)",
      "Fits 1/4 in. and 1/8 in. pegboard.", 14, one(), 2),
    t("garage_hooks", ST, "Ruxley", "{brand} {kind}", "Screws into studs; vinyl-coated to "
      "protect gear.", 19, kinds("Heavy-Duty Garage Storage Hooks (8-Pack)",
                                 "Vertical Bike Storage Hook (2-Pack)")),
    t("overhead_rack", ST, "Kelsmark", "{brand} 4 ft. x 8 ft. Overhead Garage Storage Rack",
      "Ceiling-mount steel rack holds up to 600 lb.", 149, one()),
    t("workbench", ST, "Ardley", "{brand} 6 ft. Adjustable-Height Workbench with Hardwood Top",
      "Steel frame with a power strip and pegboard back.", 249, one()),
    t("closet_organizer", ST, "Ruxley", "{brand} {kind}, White",
      "Creates shelves and hanging space in reach-in closets.", 49,
      kinds("4 ft. to 8 ft. Adjustable Closet Organizer Kit", "48 in. Wire Closet Shelf with "
            "Brackets")),
]


# Price multipliers by attribute value (type -> attribute -> value -> factor; default 1).
PRICE_BY: dict[str, dict[str, dict[str, float]]] = {
    "drill": {"kit": {"Kit with 2 Batteries and Charger": 1.8}, "voltage": {"20V": 1.25}},
    "hammer_drill": {"power": {"20V Cordless": 1.3}},
    "impact_driver": {"voltage": {"20V": 1.3}},
    "circular_saw": {"power": {"20V Cordless": 1.4}},
    "recip_saw": {"power": {"20V Cordless": 1.3}},
    "jigsaw": {"power": {"20V Cordless": 1.4}},
    "sander": {"power": {"20V Cordless": 1.5}},
    "grinder": {"power": {"20V Cordless": 1.5}},
    "wet_dry_vac": {"size": {"6 Gallon 3.5": 0.8, "12 Gallon 5.0": 1.3, "16 Gallon 6.5": 1.7}},
    "drill_bits": {"set": {"29-Piece Cobalt": 1.8, "10-Piece Carbide-Tipped Masonry": 0.7}},
    "driver_bits": {"n": {"100": 1.6}},
    "battery": {"pack": {"12V 2.0Ah Lithium-Ion Battery": 0.8,
                         "20V 4.0Ah Lithium-Ion Battery": 1.6,
                         "20V 2.0Ah Lithium-Ion Battery (2-Pack)": 1.8}},
    "circ_blade": {"blade": {"40-Tooth Finish": 1.4}},
    "hammer": {"weight": {"20 oz.": 1.15}, "handle": {"Steel": 1.4}},
    "screwdriver_set": {"set": {"10-Piece": 1.5, "8-Piece Precision": 0.9}},
    "adj_wrench": {"size": {"6 in.": 0.8, "10 in.": 1.2, "12 in.": 1.45}},
    "wrench_set": {"n": {"22": 1.6}},
    "socket_set": {"set": {"40-Piece 1/4 in.": 0.7, "86-Piece 3/8 in.": 1.2,
                           "120-Piece 1/4 in. and 3/8 in.": 1.9}},
    "hex_keys": {"kind": {"18-Piece T-Handle": 1.6}},
    "tape_measure": {"length": {"16 ft.": 0.7, "35 ft.": 1.4}},
    "level": {"kind": {"9 in. Magnetic Torpedo": 0.7, "48 in. Aluminum Box": 1.9}},
    "pipe_wrench": {"size": {"18 in.": 1.4}},
    "interior_paint": {"finish": {"Satin": 1.05, "Semi-Gloss": 1.1}},
    "exterior_paint": {"finish": {"Satin": 1.08}},
    "primer": {"kind": {"Stain-Blocking Primer, White, 1 Quart": 0.55,
                        "Bonding Primer, White, 1 Gallon": 1.1}},
    "roller_kit": {"kit": {"7-Piece": 1.6}},
    "brush": {"kind": {"2-1/2 in. Angled Sash": 1.15, "3 in. Flat": 1.1}},
    "painters_tape": {"n": {"3": 2.6}},
    "drop_cloth": {"kind": {"Plastic Drop Cloth (3-Pack)": 0.8}},
    "caulk": {"kind": {"100% Silicone Kitchen and Bath Sealant, Clear": 1.3,
                       "100% Silicone Kitchen and Bath Sealant, White": 1.3}},
    "putty_knife": {"size": {"3 in.": 1.2}},
    "kitchen_faucet": {"style": {"Two-Handle Side-Spray": 0.85},
                       "finish": {"Matte Black": 1.15, "Brushed Nickel": 1.1,
                                  "Stainless Steel": 1.1}},
    "bath_faucet": {"style": {"8 in. Widespread 2-Handle": 1.6,
                              "Single-Hole Single-Handle": 1.25},
                    "finish": {"Matte Black": 1.1, "Brushed Nickel": 1.1,
                               "Oil-Rubbed Bronze": 1.1}},
    "shower_head": {"style": {"5-Spray Handheld": 1.3},
                    "finish": {"Matte Black": 1.15, "Brushed Nickel": 1.15}},
    "toilet": {"shape": {"Elongated": 1.15}},
    "toilet_seat": {"shape": {"Elongated": 1.1}},
    "flapper": {"size": {"3 in.": 1.3}},
    "supply_line": {"use": {"Dishwasher": 1.3}},
    "pex_fittings": {"kind": {"1/2 in. PEX Crimp Tool": 4.0}},
    "disposal": {"hp": {"1/3": 0.8, "3/4": 1.5}},
    "drain_auger": {"kind": {"18 in. Plastic Drain Cleaning Tool (3-Pack)": 0.5}},
    "led_bulb": {"model": {"100W Equivalent A19": 1.1, "65W Equivalent BR30 Flood": 1.4}},
    "ceiling_fan": {"size": {"44 in.": 0.8, "60 in.": 1.4}, "has_light": {"yes": 1.2},
                    "location": {"Indoor/Outdoor": 1.15}},
    "recessed": {"size": {"6 in.": 1.2}},
    "vanity_light": {"n": {"4": 1.3}},
    "under_cabinet": {"length": {"12 in.": 0.7, "24 in.": 1.3}},
    "extension_cord": {"length": {"9 ft.": 0.5, "50 ft.": 1.8, "100 ft.": 3.2}},
    "outlet": {"kind": {"15 Amp Duplex Outlet, White (10-Pack)": 1.8,
                        "20 Amp GFCI Outlet, White": 2.0,
                        "15 Amp USB Charger Outlet with Type-A and Type-C Ports, White": 2.3}},
    "switch": {"kind": {"Single-Pole Decorator Light Switch, White (10-Pack)": 1.6,
                        "LED Dimmer Switch, Single-Pole/3-Way, White": 1.7,
                        "Smart Wi-Fi Light Switch, Single-Pole, White": 2.5}},
    "surge": {"n": {"8": 1.3}},
    "wire": {"size": {"12/2 x 50 ft.": 1.5, "14/2 x 250 ft.": 3.6}},
    "vinyl_plank": {"thickness": {"8 mm": 1.25}},
    "hardwood": {"species": {"Hickory": 1.1}},
    "thinset": {"color": {"White": 1.2}},
    "string_trimmer": {"power": {"20V Cordless": 0.9, "40V Cordless": 1.4,
                                 "25cc 2-Cycle Gas": 1.6}},
    "trimmer_line": {"length": {"500 ft.": 2.0}},
    "lawn_mower": {"power": {"20V Cordless": 0.8, "40V Cordless": 1.3, "170cc Gas": 1.1},
                   "drive": {"Self-Propelled": 1.35}},
    "leaf_blower": {"power": {"20V Cordless Handheld": 0.9, "40V Cordless Handheld": 1.5,
                              "25cc Gas Handheld": 1.3, "43cc Gas Backpack": 2.2}},
    "hedge_trimmer": {"power": {"20V Cordless": 1.3}},
    "garden_hose": {"length": {"100 ft.": 1.6}, "material": {"Hybrid Polymer": 1.2}},
    "sprinkler": {"kind": {"Impact": 1.2}},
    "pruner": {"kind": {"32 in. Bypass Lopper": 1.8, "Hedge Shears, 8 in. Blades": 1.5}},
    "wheelbarrow": {"cap": {"8": 1.3}},
    "raised_bed": {"kind": {"2 ft. x 8 ft. Galvanized Metal": 1.2}},
    "microwave": {"style": {"Countertop": 0.45}, "finish": {"White": 0.9, "Black": 0.95}},
    "refrigerator": {"style": {"Side-by-Side": 0.85, "Top Freezer": 0.5, "Compact": 0.13},
                     "finish": {"Black Stainless Steel": 1.08, "White": 0.92}},
    "dishwasher": {"tub": {"Plastic": 0.7},
                   "finish": {"Black Stainless Steel": 1.08, "White": 0.92}},
    "range": {"fuel": {"Electric Coil": 0.7, "Gas": 1.1}, "finish": {"White": 0.92,
                                                                    "Black": 0.95}},
    "water_filter": {"n": {"3": 2.6}},
    "chest_freezer": {"size": {"7.0": 1.25}},
    "wood_screws": {"length": {"1-1/4 in.": 0.8, "3 in.": 1.5}},
    "deck_screws": {"length": {"3 in.": 1.1}},
    "drywall_screws": {"length": {"1-5/8 in.": 1.1}},
    "masonry_screws": {"length": {"2-3/4 in.": 1.25}},
    "nails": {"kind": {"16d x 3-1/2 in. Bright Common Nails, 5 lb.": 2.2,
                       "8d x 2-1/2 in. Hot-Dip Galvanized Common Nails, 1 lb.": 0.9,
                       "2 in. 18-Gauge Brad Nails (2,000-Pack)": 1.2}},
    "anchors": {"kind": {"1/4 in. Spring Toggle Bolts (10-Pack)": 1.2}},
    "hex_bolts": {"size": {"1/4 in. x 2 in.": 0.7, "3/8 in. x 3 in.": 1.2,
                           "1/2 in. x 4 in.": 2.0}},
    "tool_chest": {"width": {"41 in.": 1.6}},
    "tool_box": {"kind": {"22 in. Rolling Tool Box": 1.8, "16 in. Steel Tool Box": 1.2}},
    "shelving": {"load": {"350": 1.5, "100": 0.6}},
    "tote": {"kind": {"18 Gal. Clear Storage Tote with Latching Lid": 0.9,
                      "12 Gal. Storage Tote with Lid, Gray (4-Pack)": 2.5,
                      "66 qt. Clear Latching Storage Bin (6-Pack)": 3.5}},
    "closet_organizer": {"kind": {"48 in. Wire Closet Shelf with Brackets": 0.5}},
}


# ---------------------------------------------------------------------------------------
# Queries: (query, exact, substitute, complement, irrelevant). A selector is a type key,
# optionally with conditions: "type(attr=value;attr~part|other)"; "=" is an exact match,
# "~" a case-insensitive substring, "|" separates alternatives. Products of an exact type
# that miss a condition are substitutes, unless the substitute field says "noauto".
# ---------------------------------------------------------------------------------------

QUERIES: list[tuple[str, str, str, str, str]] = [
    # power tools
    ("cordless drill 20v", "drill(voltage=20V)", "impact_driver hammer_drill(power~Cordless)",
     "drill_bits battery(voltage=20V)", "string_trimmer(power~20V) leaf_blower(power~20V)"),
    ("cordles drill", "drill", "impact_driver hammer_drill", "drill_bits driver_bits",
     "recip_saw(power~Cordless)"),
    ("hammer drill for concrete", "hammer_drill", "drill",
     "drill_bits(set~Masonry) masonry_screws", "hammer"),
    ("impact driver", "impact_driver", "drill", "driver_bits battery",
     "multi_bit_screwdriver screwdriver_set"),
    ("skil saw 7 1/4", "circular_saw", "jigsaw recip_saw", "circ_blade", "tile_saw"),
    ("circular saw blade", "circ_blade", "", "circular_saw", "recip_blades jigsaw_blades"),
    ("sawzall blades", "recip_blades", "jigsaw_blades", "recip_saw", "circ_blade"),
    ("reciprocating saw cordless", "recip_saw(power~Cordless)", "jigsaw(power~Cordless)",
     "recip_blades battery(voltage=20V)", "circ_blade"),
    ("orbital sander", "sander", "", "sanding_discs", "jigsaw"),
    ("120 grit sanding discs 5 inch", "sanding_discs(grit=120)", "", "sander",
     "cutoff_wheels(kind~Flap) jigsaw"),
    ("angle grinder", "grinder", "", "cutoff_wheels", "sanding_discs"),
    ("shop vac", "wet_dry_vac", "", "vac_filter", "shop_light"),
    ("wet dry vacuum 12 gallon", "wet_dry_vac(size~12 Gallon)", "", "vac_filter",
     "tote(kind~Gal.)"),
    ("20v battery", "battery(voltage=20V)", "",
     "drill(voltage=20V) impact_driver(voltage=20V)", "voltage_tester"),
    ("drill bits for metal", "drill_bits(set~Cobalt|Titanium)", "noauto", "drill",
     "drill_bits(set~Masonry) driver_bits"),
    ("masonry drill bit set", "drill_bits(set~Masonry)", "noauto",
     "hammer_drill masonry_screws", "drill_bits(set~Cobalt|Titanium) driver_bits"),
    # hand tools
    ("claw hammer 16 oz", "hammer(weight=16 oz.)", "", "nails(kind~Common)", "hammer_drill"),
    ("fiberglass hammer", "hammer(handle=Fiberglass)", "", "nails",
     "hammer_drill shovel(kind~Fiberglass)"),
    ("screwdriver set", "screwdriver_set", "multi_bit_screwdriver", "",
     "impact_driver driver_bits"),
    ("scredriver set precision", "screwdriver_set(set~Precision)", "multi_bit_screwdriver",
     "", "driver_bits"),
    ("crescent wrench", "adj_wrench", "wrench_set pipe_wrench", "", ""),
    ("adjustable wrench 10 inch", "adj_wrench(size=10 in.)", "pipe_wrench", "",
     "under_cabinet(length=12 in.)"),
    ("channel locks", "pliers(kind~Tongue)", "noauto adj_wrench pipe_wrench", "",
     "pliers(kind~Long Nose|Diagonal)"),
    ("allen wrench set", "hex_keys", "driver_bits", "", "wrench_set adj_wrench"),
    ("socket set", "socket_set", "wrench_set", "", "outlet"),
    ("tape measure 25 ft", "tape_measure(length=25 ft.)", "laser_measure", "",
     "painters_tape electrical_tape"),
    ("4 foot level", "level(kind~48 in.)", "laser_level", "", "shop_light pegboard"),
    ("laser level", "laser_level", "level", "", "laser_measure"),
    ("18 inch pipe wrench", "pipe_wrench(size=18 in.)", "adj_wrench", "",
     "under_cabinet(length=18 in.)"),
    ("utility knife", "utility_knife", "", "utility_blades", "putty_knife"),
    ("caulking gun", "caulk_gun", "", "caulk", "spray_paint"),
    # paint
    ("interior paint eggshell gray", "interior_paint(finish=Eggshell;color~Gray)",
     "interior_paint(color~Gray)", "roller_kit painters_tape brush",
     "deck_stain(color~Gray)"),
    ("white semi gloss paint for trim", "interior_paint(finish=Semi-Gloss;color~White)",
     "exterior_paint(color~White)", "brush(kind~Sash)", "spray_paint(color~White)"),
    ("exterior house paint", "exterior_paint", "", "primer roller_kit", "interior_paint"),
    ("stain blocking primer", "primer(kind~Stain-Blocking)", "", "roller_kit brush",
     "wood_stain deck_stain"),
    ("oil rubbed bronze spray paint", "spray_paint(color~Oil-Rubbed Bronze)", "", "",
     "bath_faucet(finish=Oil-Rubbed Bronze) ceiling_fan(finish=Oil-Rubbed Bronze)"),
    ("black spray paint", "spray_paint(color~Black)", "", "painters_tape",
     "vanity_light(finish=Matte Black)"),
    ("dark walnut wood stain", "wood_stain(color=Dark Walnut)", "", "brush",
     "deck_stain primer(kind~Stain-Blocking)"),
    ("cedar deck stain", "deck_stain(color=Cedar)", "", "roller_kit brush",
     "raised_bed(kind~Cedar)"),
    ("paint roller", "roller_kit", "", "roller_covers drop_cloth painters_tape", ""),
    ("painters tape", "painters_tape", "", "drop_cloth roller_kit",
     "electrical_tape tape_measure"),
    ("canvas drop cloth", "drop_cloth(kind~Canvas)", "", "painters_tape roller_kit", ""),
    ("spackle", "spackle", "wall_patch caulk(kind~Acrylic)", "putty_knife",
     "caulk(kind~Silicone)"),
    ("2 inch angled paint brush", "brush(kind~2 in. Angled)", "brush_set", "interior_paint",
     ""),
    ("silicone caulk for bathtub", "caulk(kind~Silicone)", "", "caulk_gun",
     "bath_faucet"),
    # plumbing
    ("brushed nickel kitchen faucet", "kitchen_faucet(finish=Brushed Nickel)", "",
     "supply_line(use=Faucet) disposal",
     "bath_faucet(finish=Brushed Nickel) spray_paint(color~Brushed Nickel)"),
    ("brushed nickel faucet", "kitchen_faucet(finish=Brushed Nickel) "
     "bath_faucet(finish=Brushed Nickel)", "", "supply_line(use=Faucet)",
     "spray_paint(color~Brushed Nickel) flush_mount(finish=Brushed Nickel)"),
    ("matte black bathroom faucet", "bath_faucet(finish=Matte Black)", "",
     "supply_line(use=Faucet) shutoff_valve",
     "kitchen_faucet(finish=Matte Black) vanity_light(finish=Matte Black)"),
    ("pull down kitchen faucet chrome", "kitchen_faucet(style~Pull-Down;finish=Chrome)", "",
     "supply_line(use=Faucet)", "shower_head(finish=Chrome)"),
    ("kitchen fauset", "kitchen_faucet", "", "supply_line(use=Faucet) disposal", "bath_faucet"),
    ("rain shower head", "shower_head(style~Rain)", "", "", "sprinkler"),
    ("handheld shower head matte black", "shower_head(style~Handheld;finish=Matte Black)", "",
     "", "bath_faucet(finish=Matte Black)"),
    ("elongated toilet", "toilet(shape=Elongated)", "",
     "toilet_seat(shape=Elongated) wax_ring supply_line(use=Toilet)",
     "toilet_seat(shape=Round)"),
    ("soft close toilet seat", "toilet_seat", "", "toilet", "flapper"),
    ("toilet flapper", "flapper", "toilet_repair_kit", "fill_valve", "toilet toilet_seat"),
    ("wax ring for toilet", "wax_ring", "", "toilet", "toilet_seat flapper"),
    ("pex tubing 1/2", "pex", "", "pex_fittings", "hex_bolts(size~1/2 in.)"),
    ("garbage disposal 3/4 hp", "disposal(hp=3/4)", "", "p_trap", "wet_dry_vac"),
    ("sink disposer", "disposal", "", "p_trap", "dishwasher"),
    ("drain snake", "drain_auger", "plunger", "", "garden_hose"),
    ("toilet plunger", "plunger(kind~Toilet)", "drain_auger", "", "toilet toilet_seat"),
    ("faucet supply line", "supply_line(use=Faucet)", "", "kitchen_faucet bath_faucet",
     "shutoff_valve"),
    ("dishwasher hookup kit", "dw_install_kit", "supply_line(use=Dishwasher)", "dishwasher",
     ""),
    # lighting
    ("ceiling fan light kit", "fan_light_kit", "ceiling_fan(has_light=yes)",
     "ceiling_fan(has_light=no)", "flush_mount"),
    ("ceilng fan with light", "ceiling_fan(has_light=yes)", "", "switch(kind~Dimmer)",
     "flush_mount fan_light_kit"),
    ("52 inch ceiling fan matte black", "ceiling_fan(size=52 in.;finish=Matte Black)", "",
     "fan_light_kit(finish=Matte Black)", "vanity_light(finish=Matte Black)"),
    ("outdoor ceiling fan", "ceiling_fan(location~Outdoor)", "", "",
     "outdoor_lantern string_lights"),
    ("6 inch can lights", "recessed(size=6 in.)", "flush_mount", "switch(kind~Dimmer)",
     "putty_knife(size=3 in.)"),
    ("pot lights", "recessed", "flush_mount", "switch(kind~Dimmer)", "pendant"),
    ("60 watt led bulb daylight", "led_bulb(model~60W;color~Daylight)", "filament_bulb", "",
     ""),
    ("soft white light bulbs", "led_bulb(color~Soft White)", "filament_bulb", "", ""),
    ("edison bulbs", "filament_bulb", "led_bulb", "pendant string_lights", ""),
    ("br30 flood light bulb", "led_bulb(model~BR30)", "", "recessed", "flood_light"),
    ("motion sensor flood light", "flood_light", "outdoor_lantern", "",
     "led_bulb(model~BR30)"),
    ("3 light vanity light brushed nickel", "vanity_light(n=3;finish=Brushed Nickel)", "",
     "", "bath_faucet(finish=Brushed Nickel) flush_mount(finish=Brushed Nickel)"),
    ("under cabinet lighting", "under_cabinet", "", "",
     "tool_chest range_hood"),
    ("garage shop light 4ft", "shop_light", "", "",
     "shelving(kind~Garage) garage_hooks pegboard"),
    ("pendant light kitchen island", "pendant", "flush_mount", "", "kitchen_faucet"),
    ("patio string lights", "string_lights", "outdoor_lantern",
     "extension_cord(kind=Outdoor)", ""),
    # electrical
    ("outdoor extension cord 50 ft", "extension_cord(kind=Outdoor;length=50 ft.)", "", "",
     "garden_hose(length=50 ft.)"),
    ("extention cord", "extension_cord", "surge", "", "garden_hose"),
    ("gfci outlet", "outlet(kind~GFCI)", "", "wall_plate", "surge"),
    ("dimmer switch", "switch(kind~Dimmer)", "", "wall_plate led_bulb", ""),
    ("romex 14/2", "wire(size~14/2)", "", "wire_connectors junction_box electrical_tape",
     "closet_organizer(kind~Wire)"),
    ("wire nuts", "wire_connectors", "", "wire electrical_tape", "nuts_washers(kind~Nuts)"),
    ("smart plug", "smart_plug", "switch(kind~Smart)", "", "outlet surge"),
    ("surge protector power strip", "surge", "extension_cord(kind~Indoor)", "", "outlet"),
    # flooring
    ("lvp flooring", "vinyl_plank", "laminate hardwood", "underlayment transition",
     "carpet_tile"),
    ("waterproof vinyl plank flooring gray", "vinyl_plank(color~Gray)", "laminate(color~Gray)",
     "underlayment transition(color~Gray)", ""),
    ("laminet flooring", "laminate", "vinyl_plank hardwood", "underlayment", "carpet_tile"),
    ("engineered hardwood oak", "hardwood(species~Oak)", "laminate(color~Oak) "
     "vinyl_plank(color~Oak)", "", "wood_stain(color~Oak)"),
    ("white subway tile", "subway_tile(color=White)", "", "grout(color~White) thinset",
     "caulk(kind~White)"),
    ("12x24 porcelain floor tile", "porcelain_tile", "wood_look_tile",
     "thinset grout tile_spacers trowel", ""),
    ("gray grout", "grout(color=Pewter)", "", "tile_spacers trowel", "thinset(color=Gray)"),
    ("tile saw", "tile_saw", "tile_cutter", "", "circular_saw porcelain_tile"),
    ("peel and stick carpet tiles", "carpet_tile", "", "", "porcelain_tile subway_tile"),
    ("floor underlayment", "underlayment", "", "vinyl_plank laminate", ""),
    # garden
    ("weed whacker", "string_trimmer", "", "trimmer_line trimmer_spool", "hedge_trimmer"),
    ("weed eater string", "trimmer_line trimmer_spool", "", "string_trimmer", ""),
    ("cordless string trimmer 40v", "string_trimmer(power~40V)", "", "trimmer_line",
     "hedge_trimmer(power~Cordless) lawn_mower(power~40V)"),
    ("gas weed eater", "string_trimmer(power~Gas)", "", "trimmer_line",
     "leaf_blower(power~Gas)"),
    ("self propelled lawn mower", "lawn_mower(drive=Self-Propelled)", "", "", "sprinkler"),
    ("battery lawn mower", "lawn_mower(power~Cordless)", "", "", "battery"),
    ("cordless leaf blower", "leaf_blower(power~Cordless)", "", "battery(voltage=20V)",
     "hedge_trimmer(power~Cordless)"),
    ("hedge trimmer", "hedge_trimmer", "pruner(kind~Hedge Shears)", "", "string_trimmer"),
    ("100 ft garden hose", "garden_hose(length=100 ft.)", "", "hose_nozzle hose_reel",
     "extension_cord(length=100 ft.)"),
    ("hose reel", "hose_reel", "", "garden_hose hose_nozzle", ""),
    ("pruning shears", "pruner(kind~Pruning Shears)", "", "gloves", "hedge_trimmer"),
    ("wheelbarrel", "wheelbarrow", "", "soil(kind~Mulch) shovel", ""),
    ("cedar raised garden bed", "raised_bed(kind~Cedar)", "",
     "soil(kind~Raised Bed) gloves shovel(kind~Spade)",
     "deck_stain(color=Cedar)"),
    ("potting soil", "soil(kind~Potting)", "noauto soil(kind~Raised Bed)", "gloves raised_bed",
     "soil(kind~Mulch|Seed)"),
    ("lawn sprinkler", "sprinkler", "", "garden_hose hose_nozzle", "lawn_mower"),
    ("round point shovel", "shovel(kind~Round Point)", "noauto shovel(kind~Square|Spade)",
     "wheelbarrow", "shovel(kind~Rake)"),
    # kitchen appliances
    ("french door refrigerator stainless", "refrigerator(style=French Door;finish=Stainless "
     "Steel)", "", "water_filter", "dishwasher(finish=Stainless Steel)"),
    ("fridge", "refrigerator", "chest_freezer", "water_filter", ""),
    ("mini fridge", "refrigerator(style=Compact)", "", "", "chest_freezer"),
    ("fridge water filter", "water_filter", "", "refrigerator(style=French Door|Side-by-Side)",
     "vac_filter"),
    ("over the range microwave", "microwave(style=Over-the-Range)", "range_hood", "",
     "range range_cord"),
    ("quiet dishwasher stainless steel", "dishwasher(dba=44;finish=Stainless Steel)", "",
     "dw_install_kit", "disposal"),
    ("electric stove", "range(fuel~Electric)", "", "range_cord", "gas_connector"),
    ("30 inch gas range", "range(fuel=Gas)", "", "gas_connector range_hood", "range_cord"),
    ("range hood", "range_hood", "microwave(style=Over-the-Range)", "", "range"),
    ("chest freezer", "chest_freezer", "", "",
     "refrigerator(style=Top Freezer) tool_chest"),
    # fasteners
    ("2 inch wood screws", "wood_screws(length=2 in.)", "deck_screws", "",
     "drywall_screws masonry_screws"),
    ("deck screws 3 inch", "deck_screws(length=3 in.)", "wood_screws(length=3 in.)",
     "driver_bits",
     "drywall_screws"),
    ("sheetrock screws", "drywall_screws", "wood_screws", "anchors(kind~Drywall)", ""),
    ("drywall anchors", "anchors(kind~Plastic|Self-Drilling)", "anchors", "",
     "drywall_screws"),
    ("molly bolts", "anchors(kind~Hollow Wall)", "anchors", "", "hex_bolts"),
    ("toggle bolts", "anchors(kind~Toggle)", "anchors", "", "hex_bolts"),
    ("tapcon screws", "masonry_screws", "", "drill_bits(set~Masonry)",
     "wood_screws deck_screws"),
    ("16d nails", "nails(kind~16d)", "noauto nails(kind~Common)", "hammer",
     "nails(kind~Brad)"),
    ("18 gauge brad nails", "nails(kind~Brad)", "noauto", "", "nails(kind~Common) wire"),
    ("3/8 hex bolts", "hex_bolts(size~3/8)", "", "nuts_washers", "lag_screws"),
    ("picture hanging kit", "picture_kit", "anchors", "", "garage_hooks"),
    # storage
    ("rolling tool chest", "tool_chest", "tool_box(kind~Rolling)", "", "chest_freezer"),
    ("tool box", "tool_box", "tool_bag tool_chest", "", "parts_organizer"),
    ("garage shelving", "shelving", "overhead_rack", "tote",
     "closet_organizer(kind~Shelf)"),
    ("storage bins with lids", "tote", "parts_organizer", "shelving", ""),
    ("pegboard hooks", "pegboard_hooks", "", "pegboard", "garage_hooks picture_kit"),
    ("bike hooks for garage", "garage_hooks(kind~Bike)", "garage_hooks overhead_rack", "",
     "pegboard_hooks shelving(kind~Garage) picture_kit"),
]


# -- building the catalog -------------------------------------------------------------------


def render(template: str, fields: dict[str, str]) -> str:
    """Fill a template and normalise spaces."""
    return " ".join(template.format(**fields).split())


def price_of(ptype: ProductType, variant: dict[str, str], brand: str,
             rng: random.Random) -> float:
    """A store-like price: base x brand level x attribute factors, ending in .97/.98/.99/.47."""
    value = ptype.price * BRAND_PRICE[brand] * rng.uniform(0.94, 1.06)
    for attr, factors in PRICE_BY.get(ptype.key, {}).items():
        assert attr in variant and set(factors) <= {v[attr] for v in ptype.variants}, ptype.key
        value *= factors.get(variant[attr], 1.0)
    return math.floor(max(value, 2.0)) + rng.choice((0.97, 0.98, 0.99, 0.47))


def build_catalog(rng: random.Random) -> list[Product]:
    """Every variant x brand of every type, with category-prefixed, gapped SKUs."""
    counters = {category: 0 for category in CATEGORY_PREFIX}
    products: list[Product] = []
    for category in CATEGORY_PREFIX:
        for ptype in (p for p in TYPES if p.category == category):
            for index, variant in enumerate(ptype.variants):
                for offset in range(ptype.per_variant):
                    brand = ptype.brands[(index + offset) % len(ptype.brands)]
                    fields = {**variant, "brand": brand}
                    counters[category] += rng.randint(1, 6)
                    products.append(Product(
                        sku=f"{CATEGORY_PREFIX[category]}-{counters[category]:04d}",
                        type_key=ptype.key,
                        attrs=dict(variant),
                        title=render(ptype.title, fields),
                        brand=brand,
                        category=category,
                        description=render(ptype.description, fields),
                        price=price_of(ptype, variant, brand, rng),
                        in_stock=rng.random() < 0.88,
                    ))
    return products


# -- judging --------------------------------------------------------------------------------


def parse_selector(selector: str) -> tuple[str, list[tuple[str, str, list[str]]]]:
    """Parse one selector; values are lower-cased.

    >>> parse_selector("drill(voltage=20V;kit~Kit|Tool)")
    ('drill', [('voltage', '=', ['20v']), ('kit', '~', ['kit', 'tool'])])
    """
    key, _, rest = selector.partition("(")
    conditions = []
    for part in filter(None, rest.rstrip(")").split(";")):
        op = "=" if "=" in part else "~"
        attr, _, values = part.partition(op)
        conditions.append((attr.strip(), op, [v.strip().lower() for v in values.split("|")]))
    return key.strip(), conditions


def split_selectors(text: str) -> list[str]:
    """Split on spaces that are outside parentheses."""
    out, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == " " and depth == 0:
            if current:
                out.append(current)
            current = ""
        else:
            current += char
    return out + ([current] if current else [])


def matches(product: Product, key: str, conditions: list) -> bool:
    """Does a product satisfy one selector?"""
    if product.type_key != key:
        return False
    for attr, op, values in conditions:
        actual = product.attrs.get(attr, "").lower()
        if not any(actual == v if op == "=" else v in actual for v in values):
            return False
    return True


def select(products: list[Product], selectors: str, *, type_only: bool = False) -> list[Product]:
    """Products matching any selector (``type_only`` ignores the conditions)."""
    parsed = [parse_selector(s) for s in split_selectors(selectors)]
    known = {p.key for p in TYPES}
    for key, _ in parsed:
        assert key in known, f"unknown product type {key!r}"
    return [p for p in products
            if any(matches(p, key, [] if type_only else conds) for key, conds in parsed)]


def label_pools(products: list[Product], query: tuple[str, ...]) -> dict[str, list[Product]]:
    """Candidate products per label; each product gets its best label only."""
    _, exact, substitute, complement, irrelevant = query
    auto = "noauto" not in split_selectors(substitute)
    substitute = " ".join(s for s in split_selectors(substitute) if s != "noauto")
    raw = {
        "E": select(products, exact),
        "S": (select(products, exact, type_only=True) if auto else [])
        + select(products, substitute),
        "C": select(products, complement),
        "I": select(products, irrelevant),
    }
    pools, seen = {}, set()
    for label in "ESCI":
        pools[label] = []
        for product in raw[label]:
            if product.sku not in seen:
                seen.add(product.sku)
                pools[label].append(product)
    return pools


def judge(products: list[Product], rng: random.Random) -> list[tuple[str, str, str]]:
    """(query, sku, label) rows: up to 5 E, 4 S, 3 C, 3 I per query, at least 6 in all."""
    rows = []
    for query in QUERIES:
        pools = label_pools(products, query)
        assert pools["E"], f"no exact product for {query[0]!r}"
        counts = {label: min(len(pools[label]), MAX_PER_LABEL[label]) for label in "ESCI"}
        for label in "SCIE":  # top up small queries
            while sum(counts.values()) < MIN_JUDGED and counts[label] < len(pools[label]):
                counts[label] += 1
        assert sum(counts.values()) >= MIN_JUDGED, f"too few candidates for {query[0]!r}"
        for label in "ESCI":
            chosen = rng.sample(pools[label], counts[label])
            rows += [(query[0], p.sku, label) for p in sorted(chosen, key=lambda p: p.sku)]
    return rows


# -- output ---------------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write UTF-8 CSV with "\\n" line endings (the same bytes on every platform)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    """Build the catalog, judge the queries and write both CSV files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="directory for catalog.csv and judged_queries.csv")
    args = parser.parse_args(argv)
    assert len({q[0] for q in QUERIES}) == len(QUERIES), "duplicate query"
    rng = random.Random(SEED)
    products = build_catalog(rng)
    judgments = judge(products, rng)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "catalog.csv",
              ["sku", "title", "brand", "category", "description", "price", "in_stock"],
              [[p.sku, p.title, p.brand, p.category, p.description, f"{p.price:.2f}",
                "true" if p.in_stock else "false"] for p in products])
    write_csv(args.out / "judged_queries.csv", ["query", "sku", "label"],
              [list(row) for row in judgments])
    print(f"{len(products)} products, {len(QUERIES)} queries, {len(judgments)} judgments "
          f"-> {args.out}")


if __name__ == "__main__":
    main()
