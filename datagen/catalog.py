"""What the generated data set is made of: scenarios, families, stores and their fixed parameters."""

from __future__ import annotations

from datetime import date

SCENARIOS: tuple[str, ...] = (
    "none",
    "promo_shift",
    "sales_drop",
    "missing_burst",
    "store_closures",
    "price_shock",
    "new_store",
    "new_family",
    "feed_stop",
)

FAMILIES: tuple[str, ...] = (
    "AUTOMOTIVE",
    "BABY CARE",
    "BEAUTY",
    "BEVERAGES",
    "BOOKS",
    "BREAD/BAKERY",
    "CELEBRATION",
    "CLEANING",
    "DAIRY",
    "DELI",
    "EGGS",
    "FROZEN FOODS",
    "GROCERY I",
    "GROCERY II",
    "HARDWARE",
    "HOME AND KITCHEN I",
    "HOME AND KITCHEN II",
    "HOME APPLIANCES",
    "HOME CARE",
    "LADIESWEAR",
    "LAWN AND GARDEN",
    "LINGERIE",
    "LIQUOR,WINE,BEER",
    "MAGAZINES",
    "MEATS",
    "PERSONAL CARE",
    "PET SUPPLIES",
    "PLAYERS AND ELECTRONICS",
    "POULTRY",
    "PREPARED FOODS",
    "PRODUCE",
    "SCHOOL AND OFFICE SUPPLIES",
    "SEAFOOD",
)

# Mean daily sales at an average store (before trend and seasonality), typical number of items on
# promotion once promotions are common, weekly-seasonality amplitude, December amplitude.
FAMILY_PARAMS: dict[str, tuple[float, float, float, float]] = {
    "AUTOMOTIVE": (6.0, 0.3, 1.0, 0.8),
    "BABY CARE": (0.25, 0.05, 0.6, 0.5),
    "BEAUTY": (4.0, 0.4, 1.1, 1.3),
    "BEVERAGES": (2500.0, 18.0, 1.1, 1.3),
    "BOOKS": (0.6, 0.0, 0.6, 1.0),
    "BREAD/BAKERY": (450.0, 5.0, 0.9, 1.0),
    "CELEBRATION": (9.0, 0.3, 1.0, 2.0),
    "CLEANING": (1100.0, 14.0, 0.9, 0.9),
    "DAIRY": (700.0, 11.0, 0.9, 0.9),
    "DELI": (270.0, 5.0, 1.0, 1.0),
    "EGGS": (180.0, 2.0, 0.8, 0.6),
    "FROZEN FOODS": (160.0, 4.0, 1.0, 2.2),
    "GROCERY I": (3800.0, 45.0, 1.0, 1.0),
    "GROCERY II": (22.0, 0.8, 1.0, 1.2),
    "HARDWARE": (1.2, 0.1, 0.7, 0.6),
    "HOME AND KITCHEN I": (22.0, 1.0, 1.1, 1.6),
    "HOME AND KITCHEN II": (18.0, 0.8, 1.1, 1.6),
    "HOME APPLIANCES": (0.6, 0.05, 0.8, 1.5),
    "HOME CARE": (180.0, 7.0, 1.0, 0.9),
    "LADIESWEAR": (7.0, 0.2, 1.2, 1.6),
    "LAWN AND GARDEN": (6.0, 0.3, 1.2, 0.8),
    "LINGERIE": (7.0, 0.2, 1.2, 1.6),
    "LIQUOR,WINE,BEER": (90.0, 1.5, 2.0, 1.8),
    "MAGAZINES": (3.0, 0.1, 0.9, 0.8),
    "MEATS": (350.0, 4.0, 1.0, 1.2),
    "PERSONAL CARE": (280.0, 8.0, 0.9, 1.1),
    "PET SUPPLIES": (4.0, 0.2, 1.0, 0.8),
    "PLAYERS AND ELECTRONICS": (6.0, 0.2, 1.1, 1.8),
    "POULTRY": (360.0, 3.0, 1.0, 1.2),
    "PREPARED FOODS": (100.0, 1.5, 1.0, 1.0),
    "PRODUCE": (1400.0, 16.0, 0.9, 0.9),
    "SCHOOL AND OFFICE SUPPLIES": (3.0, 0.3, 0.8, 0.6),
    "SEAFOOD": (22.0, 0.5, 1.0, 1.3),
}
# Families sold by weight: sales printed with up to three decimals.
FRACTIONAL = frozenset({"PRODUCE", "MEATS", "POULTRY", "DELI", "SEAFOOD"})
# Families that only start selling at some date (all stores sell zero before it).
FAMILY_START: dict[str, date] = {
    "BOOKS": date(2016, 10, 8),
    "CELEBRATION": date(2014, 10, 1),
    "HOME AND KITCHEN I": date(2014, 10, 1),
    "HOME AND KITCHEN II": date(2014, 10, 1),
    "LADIESWEAR": date(2014, 10, 1),
    "MAGAZINES": date(2014, 10, 1),
    "PET SUPPLIES": date(2014, 10, 1),
    "PLAYERS AND ELECTRONICS": date(2014, 10, 1),
}
# The family that first appears on the change date in the new_family scenario (not one of FAMILIES),
# with its FAMILY_PARAMS.
NEW_FAMILY = "ICE CREAM"
NEW_FAMILY_PARAMS = (40.0, 1.0, 1.2, 1.2)
ALL_FAMILY_PARAMS = {**FAMILY_PARAMS, NEW_FAMILY: NEW_FAMILY_PARAMS}
# Share of stores that never sell a family.
ZERO_SHARE: dict[str, float] = {
    "BABY CARE": 0.4,
    "BOOKS": 0.3,
    "LAWN AND GARDEN": 0.15,
    "HOME APPLIANCES": 0.1,
}

# store_nbr, city, state, type, cluster
STORES: tuple[tuple[int, str, str, str, int], ...] = (
    (1, "Quito", "Pichincha", "D", 13),
    (2, "Quito", "Pichincha", "D", 13),
    (3, "Quito", "Pichincha", "D", 8),
    (4, "Quito", "Pichincha", "D", 9),
    (5, "Santo Domingo", "Santo Domingo de los Tsachilas", "D", 4),
    (6, "Quito", "Pichincha", "D", 13),
    (7, "Quito", "Pichincha", "D", 8),
    (8, "Quito", "Pichincha", "D", 8),
    (9, "Quito", "Pichincha", "B", 6),
    (10, "Quito", "Pichincha", "C", 15),
    (11, "Cayambe", "Pichincha", "B", 6),
    (12, "Latacunga", "Cotopaxi", "C", 15),
    (13, "Latacunga", "Cotopaxi", "C", 15),
    (14, "Riobamba", "Chimborazo", "C", 7),
    (15, "Ibarra", "Imbabura", "C", 15),
    (16, "Santo Domingo", "Santo Domingo de los Tsachilas", "C", 3),
    (17, "Quito", "Pichincha", "C", 12),
    (18, "Quito", "Pichincha", "B", 16),
    (19, "Guaranda", "Bolivar", "C", 15),
    (20, "Quito", "Pichincha", "B", 6),
    (21, "Santo Domingo", "Santo Domingo de los Tsachilas", "B", 6),
    (22, "Puyo", "Pastaza", "C", 7),
    (23, "Ambato", "Tungurahua", "D", 9),
    (24, "Guayaquil", "Guayas", "D", 1),
    (25, "Salinas", "Santa Elena", "D", 1),
    (26, "Guayaquil", "Guayas", "D", 10),
    (27, "Daule", "Guayas", "D", 1),
    (28, "Guayaquil", "Guayas", "E", 10),
    (29, "Guayaquil", "Guayas", "E", 10),
    (30, "Guayaquil", "Guayas", "C", 3),
    (31, "Babahoyo", "Los Rios", "B", 10),
    (32, "Guayaquil", "Guayas", "C", 3),
    (33, "Quevedo", "Los Rios", "C", 3),
    (34, "Guayaquil", "Guayas", "B", 6),
    (35, "Playas", "Guayas", "C", 3),
    (36, "Libertad", "Guayas", "E", 10),
    (37, "Cuenca", "Azuay", "D", 2),
    (38, "Loja", "Loja", "D", 4),
    (39, "Cuenca", "Azuay", "B", 6),
    (40, "Machala", "El Oro", "C", 3),
    (41, "Machala", "El Oro", "D", 4),
    (42, "Cuenca", "Azuay", "D", 2),
    (43, "Esmeraldas", "Esmeraldas", "E", 10),
    (44, "Quito", "Pichincha", "A", 5),
    (45, "Quito", "Pichincha", "A", 11),
    (46, "Quito", "Pichincha", "A", 14),
    (47, "Quito", "Pichincha", "A", 14),
    (48, "Quito", "Pichincha", "A", 14),
    (49, "Quito", "Pichincha", "A", 11),
    (50, "Ambato", "Tungurahua", "A", 14),
    (51, "Guayaquil", "Guayas", "A", 17),
    (52, "Manta", "Manabi", "A", 11),
    (53, "Manta", "Manabi", "D", 13),
    (54, "El Carmen", "Manabi", "C", 3),
)
N_STORES = len(STORES)
# The store that opens in the new_store scenario when all 54 stores are written (otherwise the next
# store of the list opens).
NEW_STORE = (55, "Quito", "Pichincha", "A", 14)
TYPE_SCALE = {"A": 2.3, "B": 0.95, "C": 0.6, "D": 1.1, "E": 0.75}
# Stores that open late: all-zero sales rows before this date.
OPENING: dict[int, date] = {
    36: date(2013, 5, 9),
    53: date(2014, 5, 29),
    20: date(2015, 2, 13),
    29: date(2015, 3, 20),
    21: date(2015, 7, 24),
    42: date(2015, 8, 21),
    22: date(2015, 10, 9),
    52: date(2017, 4, 20),
}
# Temporary closures (refurbishment): zero sales from first to last day inclusive.
TEMP_CLOSED: dict[int, tuple[date, date]] = {
    12: (date(2015, 9, 7), date(2015, 9, 20)),
    18: (date(2016, 9, 19), date(2016, 12, 4)),
}
# The only stores open on January 1.
OPEN_ON_NEW_YEAR = frozenset({25, 36})
# Coastal school regime: back-to-school in April, not in August/September.
COAST_STATES = frozenset(
    {"Guayas", "El Oro", "Manabi", "Los Rios", "Esmeraldas", "Santa Elena", "Santo Domingo de los Tsachilas"}
)

# City -> (month, day) of its local foundation day.
CITY_DAYS: dict[str, tuple[int, int]] = {
    "Quito": (12, 6),
    "Guayaquil": (7, 25),
    "Cuenca": (4, 12),
    "Santo Domingo": (7, 3),
    "Ambato": (4, 21),
    "Manta": (11, 4),
    "Machala": (6, 25),
    "Latacunga": (11, 11),
    "Loja": (12, 8),
    "Babahoyo": (10, 15),
    "Esmeraldas": (8, 5),
    "Ibarra": (9, 28),
    "Riobamba": (8, 11),
    "Cayambe": (6, 23),
    "Puyo": (5, 12),
    "Guaranda": (11, 10),
    "Salinas": (12, 22),
    "Daule": (8, 3),
    "Quevedo": (10, 7),
    "Playas": (8, 2),
    "Libertad": (4, 14),
    "El Carmen": (6, 3),
}
# State -> (month, day) of its provincialisation day (regional holiday).
STATE_DAYS: dict[str, tuple[int, int]] = {
    "Cotopaxi": (4, 1),
    "Imbabura": (6, 25),
    "Santo Domingo de los Tsachilas": (11, 6),
    "Santa Elena": (11, 7),
}

EARTHQUAKE = date(2016, 4, 16)
EARTHQUAKE_DAYS = 30
TEST_DAYS = 16
EPOCH = date(2013, 1, 1)

HOLIDAYS_HEADER = ("date", "type", "locale", "locale_name", "description", "transferred")
