"""The vocabulary of the sample world's texts.

Names, places, organisations, section titles, non-visual filler sentences and
the templates of mention sentences, per style: encyclopedia-like Simple English
for Wikipedia (American spellings), news for the BBC (British spellings and
proper nouns that must not change), short captions for COCO. ``texts.Writer``
fills them in.
"""

FIRST = """Anna Thomas Maria John Clara Peter Helen Robert Sophie William Laura James Emma Henry Julia
George Alice Edward Rosa Charles Martha Paul Eva Frank Ida Carl Nora Oskar Lena Victor Agnes
Hugo Greta Louis Ruth Arthur Olga Felix Irene Walter""".split()  # noqa: SIM905
LAST = """Berg Hansen Moreau Weber Carter Lindqvist Rossi Novak Fischer Dubois Keller Ward Meyer
Larsen Brandt Castell Hoffman Morgan Richter Valdez Schmidt Olsen Bauer Fontaine Kowalski
Lambert Ferrari Jensen Baker Wagner Petrov Duval Hughes Sorensen Marino Klein""".split()  # noqa: SIM905
CITIES = """Paris London Berlin Vienna Rome Madrid Amsterdam Prague Oslo Stockholm Lisbon Dublin
Brussels Munich Milan Zurich Copenhagen Helsinki Warsaw Budapest Boston Chicago Toronto
Sydney Edinburgh Glasgow Manchester Florence Venice Lyon Hamburg Geneva""".split()  # noqa: SIM905
COUNTRIES = """France Germany Italy Spain Austria Norway Sweden Denmark Poland Portugal Ireland Belgium
Switzerland Finland Hungary Canada Australia Scotland""".split()  # noqa: SIM905
MUSEUMS = [
    "National Gallery",
    "City Museum",
    "Modern Art Museum",
    "Royal Academy",
    "Museum of Design",
    "State Gallery",
    "Textile Museum",
    "Folk Art Museum",
]
KINDS = [
    "painting",
    "flag",
    "mosaic",
    "poster",
    "quilt",
    "stained glass window",
    "banner",
    "tapestry",
]
ADJ = """Morning Evening Quiet Golden Silent Northern Little Old Bright Winter Summer Autumn Spring
Harbour Hidden Second Last First Blue Distant Broken Open""".split()  # noqa: SIM905
NOUNS = """Harbour Garden Window Bridge Market River Tower Square Field Road Station Village Festival
Journey Dream Song Parade Game Morning Hill Lake Forest""".split()  # noqa: SIM905
MOVEMENTS = [
    "abstract art",
    "modern art",
    "folk art",
    "constructivism",
    "the Bauhaus school",
    "geometric art",
    "pop art",
    "minimalism",
]
SUBJECTS = [
    "painting",
    "design",
    "architecture",
    "drawing",
    "printmaking",
    "textile art",
    "graphic design",
    "sculpture",
    "art history",
    "mathematics",
]
MATERIALS = [
    "oil paint",
    "canvas",
    "wool",
    "cotton",
    "glass",
    "ceramic tiles",
    "paper",
    "wood",
    "silk",
    "linen",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ORGS = [
    "Labour Party",
    "Ministry of Defence",
    "Conservative Party",
    "Arts Council",
    "Football Association",
    "Royal Navy",
    "National Trust",
    "City Council",
]
PLACES_UK = [
    "Leeds",
    "Bristol",
    "Cardiff",
    "Belfast",
    "Newcastle",
    "Liverpool",
    "Sheffield",
    "Nottingham",
    "Brighton",
    "Oxford",
    "Cambridge",
    "York",
    "Aberdeen",
    "Swansea",
]
JOBS = [
    "spokesman",
    "spokeswoman",
    "minister",
    "councillor",
    "director",
    "official",
    "campaigner",
    "head teacher",
    "police officer",
    "analyst",
]
SECTIONS = [
    "History",
    "Description",
    "Reception",
    "Legacy",
    "Exhibitions",
    "Materials",
    "Restoration",
    "Ownership",
    "Influence",
    "Technique",
]
SUBSECTIONS = ["Early years", "Later years", "Critics", "Copies", "Public response", "Damage"]

# Filler: non-visual sentences. They never contain a position phrase (scenes.parse_claim).
WIKI_FILLER = [
    "It was made by {person} in {year}.",
    "{person} was born in {city} in {year}.",
    "{person} studied {subject} in {city}.",
    "The work is kept at the {museum} in {city}.",
    "It was first shown in {city} in {month} {year}.",
    "It was sold for {number} dollars in {year}.",
    "Many people think it is one of the most important works of {movement}.",
    "The artist used {material} and {material2}.",
    "In {year}, it was moved to {city}.",
    "{person} wrote a book about it in {year}.",
    "It was copied many times in {country}.",
    "The work was damaged during a fire in {year}.",
    "It was cleaned and repaired in {year}.",
    "Some critics did not like it when it was new.",
    "It is often compared with the works of {person}.",
    "The design was used on stamps in {country}.",
    "It is about {number} centimeters wide.",
    "The museum bought it from {person} in {year}.",
    "It is part of a group of {small} similar works.",
    "Students of {subject} often learn about it.",
    "{person} said that it was the best work of {movement}.",
    "It has been shown in {city}, {city2} and {city3}.",
    "The work became famous after an exhibition in {year}.",
    "A copy of it hangs in the town hall of {city}.",
    "It was made for a church in {country}.",
    "The artist gave it to a friend in {year}.",
    "People in {country} know it from school books.",
    "It was the first work of its kind in {country}.",
    "The name of the work comes from a poem by {person}.",
    "The original drawings for it are lost.",
    "It was made in a small studio near {city}.",
    "During the war, it was hidden in {country}.",
    "Its color was changed a little after the repair in {year}.",
    "The work was stolen in {year} and found again in {year2}.",
]
BBC_FILLER = [
    "The {org} said the plans would be reviewed next year.",
    "A {org} {job} said the decision was made in {month}.",
    "Officials in {place} said the scheme would cost £{number}m.",
    "The programme will be organised by the council in {place}.",
    "{person}, a local {job}, said the neighbourhood had changed a lot.",
    "The theatre in {place} will reopen in {month} after repairs.",
    "The {org} has been criticised for its handling of defence spending.",
    "Critics said the government had failed to realise the cost of the plans.",
    "The centre will open to the public later this year.",
    "Police in {place} said they were looking for witnesses.",
    "It is the favourite venue of many families in {place}.",
    "The labour market has shown signs of recovery since {month}.",
    "More than {number} people attended the event on {day}.",
    "The travelling exhibition will visit {place} and {place2}.",
    "{person} said the colour of the new uniforms had been a surprise.",
    "The organisers apologised for the delay on {day}.",
    "The licence fee will rise by £{small} next year.",
    "Ministers met on {day} to analyse the latest figures.",
    "A report by the {org} found that behaviour had improved.",
    "Shares in the company fell by {small} per cent on {day}.",
    "The café owner, José {last}, said business had been slow.",
    "The World Trade Centre attacks changed security rules in {place}.",
    "The {org} will publish its findings in {month}.",
    "Local people were asked to give their views on the proposals.",
    "Ticket prices will rise to £{small} from {month}.",
    "The Ministry of Defence confirmed the programme would continue.",
    "The Labour Party said the cuts were unfair to families in {place}.",
    "Firefighters were called to the scene shortly after midnight.",
    "The new building is {number} metres long and has a grey roof.",
    "A spokesman for the {org} declined to comment further.",
    "The project was first proposed by {person} in {year}.",
    "Traffic was diverted around the city centre for several hours.",
    "The match was postponed because of heavy rain in {place}.",
    "Campaigners said the honour was long overdue.",
    "The museum has received a grant of £{number},000.",
    "Experts said the results were encouraging but more work was needed.",
]
BBC_HEADLINES = [
    "{org} defends new plans",
    "Exhibition opens in {place}",
    "Council to organise {place} festival",
    "New colour scheme for {place} theatre",
    "Minister visits {place}",
    "Defence cuts criticised",
    "Grey skies for {place} parade",
    "{place} centre reopens",
    "Programme of events announced",
    "Art show draws crowds",
    "Painting returns to {place}",
    "Flag row in {place}",
]
BBC_SUBHEADINGS = ["Public reaction", "Cost concerns", "Next steps", "Background", "Local views"]

WIKI_MENTION = [
    "A {size} {colour} {shape} is shown {pos}.",
    "{Pos}, there is a {size} {colour} {shape}.",
    "The {kind} has a {size} {colour} {shape} {pos}.",
    "A {size} {shape} colored {colour} can be seen {pos}.",
    "{Pos} of the picture is a {size} {colour} {shape}.",
]
BBC_MENTION = [
    "A {size} {colour} {shape} could be seen {pos} of the picture.",
    "Photographs showed a {size} {colour} {shape} {pos}.",
    "Witnesses described a {size} {shape}, {colour} in colour, {pos}.",
    "{Pos} of the image, a {size} {colour} {shape} was visible.",
    "The design features a {size} {colour} {shape} {pos}.",
]
COCO_CAPTION = [
    "A {size} {colour} {shape} {pos} of a pale background.",
    "a {size} {colour} {shape} sitting {pos}",
    "A picture with a {size} {colour} {shape} {pos}.",
    "There is a {size} {shape} that is {colour} {pos} of the image.",
    "A {colour} {shape} drawn {pos} on a textured background",
]
